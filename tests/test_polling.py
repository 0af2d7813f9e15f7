"""Polling politely, end to end: poll() against real HTTP servers on loopback and SQLite files.

Validators, Retry-After, redirects, 410, the deadline and byte cap, per-host limits, backoff,
the adaptive schedule and parsing in worker processes, each seen from both ends: what the
server received, and what the store and `feeds list` say afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.config import load_config
from aggregator.errors import ParseError
from aggregator.listing import feed_views
from aggregator.models import FeedOutcome, FeedStatus, FeedView, PollReport
from aggregator.pipeline import poll
from aggregator.store import Store, open_store
from aggregator.workers import ParserPool

from .conftest import FeedServer, Request, opened, rss, serving

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


def items(prefix: str, dates: list[datetime | None]) -> list[dict[str, str]]:
    """One RSS item per date (None: an item without a date), with links unique to ``prefix``."""
    made = []
    for i, when in enumerate(dates):
        item = {
            "guid": f"{prefix}-{i}",
            "title": f"{prefix} report number {i}",
            "link": f"https://{prefix}.example/{i}",
            "description": f"What {prefix} said in report {i}.",
        }
        if when is not None:
            item["pubDate"] = http_date(when)
        made.append(item)
    return made


def a_feed(prefix: str) -> bytes:
    return rss(prefix.title(), items(prefix, [NOW - HOUR, NOW - 2 * HOUR]))


def outcome_of(report: PollReport, url: str) -> FeedOutcome:
    found = [o for o in report.outcomes if o.url == url]
    assert len(found) == 1, report.outcomes
    return found[0]


def view_of(store: Store, url: str, now: datetime) -> FeedView:
    return next(v for v in feed_views(store, now) if v.url == url)


@pytest.fixture
def other_host() -> Iterator[FeedServer]:
    """A second server on another loopback address: another host as far as per_host goes."""
    with serving("127.0.0.2") as server:
        yield server


# --- conditional GET ---------------------------------------------------------------------------


def test_validators_go_back_exactly_as_received_and_a_304_may_bring_a_new_etag(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    etag = 'W/"x"'
    last_modified = "Tuesday, 24-Nov-26 10:10:00 GMT"  # RFC 850 form: must not be rewritten
    url = feed_server.add("/feed", body=a_feed("cond"), etag=etag, last_modified=last_modified)
    config, store = opened(write_config([url]))

    assert poll(config, store, now=NOW).outcomes[0].status == FeedStatus.OK
    first = feed_server.hits("/feed")[0].headers
    assert "if-none-match" not in first and "if-modified-since" not in first
    assert (store.feeds()[0].etag, store.feeds()[0].last_modified) == (etag, last_modified)

    second = poll(config, store, now=NOW + HOUR, all_feeds=True)
    assert second.outcomes[0].status == FeedStatus.NOT_MODIFIED
    sent = feed_server.hits("/feed")[1].headers
    assert sent["if-none-match"] == etag
    assert sent["if-modified-since"] == last_modified
    assert (store.feeds()[0].etag, store.feeds()[0].last_modified) == (etag, last_modified)

    # A 304 that names a new ETag (and no Last-Modified): the ETag changes, the date stays.
    feed_server.add("/feed", status=304, headers={"ETag": 'W/"y"'})
    third = poll(config, store, now=NOW + 2 * HOUR, all_feeds=True)
    assert third.outcomes[0].status == FeedStatus.NOT_MODIFIED
    sent = feed_server.hits("/feed")[2].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, last_modified)
    assert (store.feeds()[0].etag, store.feeds()[0].last_modified) == ('W/"y"', last_modified)

    # A bare 304 keeps both.
    feed_server.add("/feed", status=304)
    poll(config, store, now=NOW + 3 * HOUR, all_feeds=True)
    sent = feed_server.hits("/feed")[3].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == ('W/"y"', last_modified)
    assert (store.feeds()[0].etag, store.feeds()[0].last_modified) == ('W/"y"', last_modified)
    assert store.articles(since=None, limit=0)  # the 304s removed nothing
    view = feed_views(store, NOW + 3 * HOUR)[0]
    assert view.not_modified_ratio == 0.75


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("retry_after", ["7200", http_date(NOW + 2 * HOUR)])
def test_retry_after_holds_the_feed_until_then_even_for_all(
    feed_server: FeedServer, write_config: Callable[..., Path], status: int, retry_after: str
) -> None:
    url = feed_server.add("/busy", status=status, headers={"Retry-After": retry_after})
    config, store = opened(write_config([url]))
    report = poll(config, store, now=NOW, rng=random.Random(1))
    outcome = report.outcomes[0]
    assert outcome.status == FeedStatus.ERROR and f"HTTP {status}" in (outcome.message or "")

    view = feed_views(store, NOW + HOUR)[0]
    assert view.status == "rate-limited"
    assert view.retry_after == NOW + 2 * HOUR
    assert view.to_json()["retry_after"] == "2026-11-24T14:00:00Z"
    assert poll(config, store, now=NOW + 2 * HOUR - MINUTE, all_feeds=True).outcomes == ()
    assert len(feed_server.hits("/busy")) == 1

    feed_server.add("/busy", body=a_feed("busy"))
    later = poll(config, store, now=NOW + 2 * HOUR, all_feeds=True)
    assert [o.status for o in later.outcomes] == [FeedStatus.OK]
    assert len(feed_server.hits("/busy")) == 2
    view = feed_views(store, NOW + 2 * HOUR)[0]
    assert view.status == "ok" and view.retry_after is None


def test_a_retry_after_of_a_month_is_kept_for_a_week_only(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/busy", status=503, headers={"Retry-After": str(30 * 86400)})
    config, store = opened(write_config([url]))
    poll(config, store, now=NOW)
    view = feed_views(store, NOW)[0]
    assert view.status == "rate-limited"
    assert view.retry_after == NOW + timedelta(days=7)
    assert poll(config, store, now=NOW + timedelta(days=6), all_feeds=True).outcomes == ()
    feed_server.add("/busy", body=a_feed("busy"))
    week_on = poll(config, store, now=NOW + timedelta(days=7, minutes=1))
    assert [o.status for o in week_on.outcomes] == [FeedStatus.OK]


def test_feeds_list_json_shows_a_rate_limited_feed(
    feed_server: FeedServer, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    from cli import cli

    url = feed_server.add("/busy", status=429, headers={"Retry-After": "3600"})
    path = write_config([url])
    before = datetime.now(UTC).replace(microsecond=0)
    polled = runner.invoke(cli, ["--config", str(path), "-q", "poll"])
    assert polled.exit_code == 0, polled.output
    listed = runner.invoke(cli, ["--config", str(path), "feeds", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [feed] = json.loads(listed.stdout)
    assert feed["status"] == "rate-limited"
    assert "HTTP 429" in feed["last_error"]
    retry_after = datetime.fromisoformat(feed["retry_after"].replace("Z", "+00:00"))
    assert before + HOUR <= retry_after <= datetime.now(UTC) + HOUR


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_a_permanent_redirect_is_followed_from_the_new_url_by_the_next_process(
    feed_server: FeedServer, write_config: Callable[..., Path], status: int
) -> None:
    new = feed_server.add("/new.xml", body=a_feed("moved"))
    old = feed_server.add("/old.xml", status=status, headers={"Location": "/new.xml"})
    path = write_config([old])
    config, store = opened(path)
    first = poll(config, store, now=NOW).outcomes[0]
    assert first.status == FeedStatus.OK and first.new_articles == 2
    assert first.notice == f"moved permanently to {new}; fetched from there from now on"
    store.close()

    config, store = opened(path)  # a new process, on the same database
    assert store.feeds()[0].effective_url == new
    second = poll(config, store, now=NOW + 2 * HOUR, all_feeds=True).outcomes[0]
    assert (second.status, second.message) == (FeedStatus.OK, "unchanged")
    assert second.notice is None  # told once
    assert len(feed_server.hits("/old.xml")) == 1
    assert len(feed_server.hits("/new.xml")) == 2
    view = feed_views(store, NOW + 2 * HOUR)[0]
    assert (view.url, view.effective_url, view.status) == (old, new, "ok")


@pytest.mark.parametrize("status", [302, 307])
def test_a_temporary_redirect_is_not_persisted(
    feed_server: FeedServer, write_config: Callable[..., Path], status: int
) -> None:
    feed_server.add("/new.xml", body=a_feed("moved"))
    old = feed_server.add("/old.xml", status=status, headers={"Location": "/new.xml"})
    path = write_config([old])
    config, store = opened(path)
    assert poll(config, store, now=NOW).outcomes[0].notice is None
    store.close()
    config, store = opened(path)
    assert store.feeds()[0].effective_url is None
    poll(config, store, now=NOW + 2 * HOUR, all_feeds=True)
    assert len(feed_server.hits("/old.xml")) == 2
    assert len(feed_server.hits("/new.xml")) == 2


def test_a_move_onto_another_configured_feed_is_noticed_and_fetched_once(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    target = feed_server.add("/b.xml", body=a_feed("bee"))
    mover = feed_server.add("/a.xml", status=301, headers={"Location": target})
    config, store = opened(write_config([mover, target]))
    report = poll(config, store, now=NOW)
    notice = outcome_of(report, mover).notice or ""
    assert f"moved permanently to {target}, which is also the feed {target}" in notice
    assert outcome_of(report, target).notice is None
    assert len(feed_server.hits("/b.xml")) == 2

    later = poll(config, store, now=NOW + 2 * HOUR, all_feeds=True)
    assert [o.url for o in later.outcomes] == [target]
    assert len(feed_server.hits("/a.xml")) == 1
    assert len(feed_server.hits("/b.xml")) == 3
    view = view_of(store, mover, NOW + 2 * HOUR)
    assert view.status == "duplicate" and view.duplicate_of == target
    assert view.next_due is None
    assert view_of(store, target, NOW + 2 * HOUR).status == "ok"


def test_a_redirect_loop_is_an_error_naming_the_chain(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    a = feed_server.add("/a", status=301, headers={"Location": "/b"})
    b = feed_server.add("/b", status=302, headers={"Location": "/a"})
    config, store = opened(write_config([a]))
    outcome = poll(config, store, now=NOW).outcomes[0]
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message == f"redirect loop: {a} -> {b} -> {a}"
    feed = store.feeds()[0]
    assert feed.effective_url is None  # the 301 of a failed chain is not kept
    assert feed.last_error == outcome.message


def test_too_many_redirects_follow_the_configured_limit(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    for i in range(3):
        feed_server.add(f"/r{i}", status=302, headers={"Location": f"/r{i + 1}"})
    feed_server.add("/r3", body=a_feed("far"))
    config, store = opened(write_config([feed_server.url("/r0")], "polling:\n  max_redirects: 2\n"))
    outcome = poll(config, store, now=NOW).outcomes[0]
    assert outcome.status == FeedStatus.ERROR
    assert (outcome.message or "").startswith("more than 2 redirects: ")
    assert feed_server.url("/r3") in (outcome.message or "")
    assert feed_server.hits("/r3") == []


# --- 410 ---------------------------------------------------------------------------------------


def test_a_gone_feed_is_reported_once_and_never_fetched_again(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    gone = feed_server.add("/gone", status=410)
    alive = feed_server.add("/alive.xml", body=a_feed("alive"))
    config, store = opened(write_config([gone, alive]))
    report = poll(config, store, now=NOW)
    outcome = outcome_of(report, gone)
    assert outcome.status == FeedStatus.GONE and "gone" in (outcome.message or "")
    assert outcome in report.failed
    view = view_of(store, gone, NOW)
    assert view.status == "gone" and view.next_due is None

    for later in (NOW + 2 * HOUR, NOW + timedelta(days=30)):
        for all_feeds in (False, True):
            again = poll(config, store, now=later, all_feeds=all_feeds)
            assert gone not in [o.url for o in again.outcomes]
    assert len(feed_server.hits("/gone")) == 1
    assert len(feed_server.hits("/alive.xml")) > 1
    assert view_of(store, gone, NOW + timedelta(days=30)).status == "gone"


# --- the deadline and the byte cap -------------------------------------------------------------


def test_the_total_deadline_cuts_off_a_drip_feeding_server(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    body = a_feed("slow")
    assert len(body) > 400  # a byte every 50 ms: 20 s and more without a deadline
    drip = feed_server.add("/drip", body=body, drip=0.05)
    fine = feed_server.add("/fine.xml", body=a_feed("fine"))
    config, store = opened(write_config([drip, fine], "polling:\n  timeout: 1\n"))
    started = time.monotonic()
    report = poll(config, store, now=NOW)
    elapsed = time.monotonic() - started
    outcome = outcome_of(report, drip)
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message == "no complete answer within 1 s"
    assert outcome_of(report, fine).status == FeedStatus.OK
    assert elapsed < 10


def test_a_gzip_bomb_stops_at_max_bytes(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    bomb = feed_server.add("/bomb", body=b"\0" * (50 * 1024 * 1024), gzip=True)
    small = feed_server.add("/small.xml", body=a_feed("small"), gzip=True)
    config, store = opened(write_config([bomb, small], "polling:\n  max_bytes: 65536\n"))
    report = poll(config, store, now=NOW)
    outcome = outcome_of(report, bomb)
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message == "body is over the cap of 65,536 decoded bytes"
    assert outcome_of(report, small).new_articles == 2  # gzip under the cap is fine


# --- per-host limits ---------------------------------------------------------------------------


def slow_feeds(server: FeedServer, prefix: str, count: int) -> list[str]:
    return [
        server.add(f"/{prefix}{i}.xml", body=a_feed(f"{prefix}{i}"), delay=0.3)
        for i in range(count)
    ]


def most_at_once(requests: list[Request]) -> int:
    """The most requests that were in flight together, across servers."""
    events = sorted([(r.at, 1) for r in requests] + [(r.finished, -1) for r in requests])
    assert all(r.finished for r in requests)
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def test_per_host_caps_the_requests_a_host_sees_at_once(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    urls = slow_feeds(feed_server, "f", 6)
    config, store = opened(write_config(urls, "polling:\n  per_host: 2\n  concurrency: 8\n"))
    report = poll(config, store, now=NOW)
    assert report.count(FeedStatus.OK) == 6
    assert feed_server.max_in_flight == 2


def test_per_host_zero_is_no_limit(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    urls = slow_feeds(feed_server, "f", 6)
    config, store = opened(write_config(urls, "polling:\n  per_host: 0\n  concurrency: 8\n"))
    assert poll(config, store, now=NOW).count(FeedStatus.OK) == 6
    assert feed_server.max_in_flight > 2


def test_other_hosts_are_fetched_alongside_a_capped_one(
    feed_server: FeedServer, other_host: FeedServer, write_config: Callable[..., Path]
) -> None:
    urls = slow_feeds(feed_server, "a", 4) + slow_feeds(other_host, "b", 4)
    config, store = opened(write_config(urls, "polling:\n  per_host: 2\n  concurrency: 8\n"))
    assert poll(config, store, now=NOW).count(FeedStatus.OK) == 8
    assert feed_server.max_in_flight == 2 and other_host.max_in_flight == 2
    assert most_at_once(feed_server.requests + other_host.requests) > 2


def test_two_ports_of_one_host_are_two_servers_with_their_own_slots(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    with serving() as same_address:
        assert same_address.base != feed_server.base
        urls = slow_feeds(feed_server, "a", 3) + slow_feeds(same_address, "b", 3)
        config, store = opened(write_config(urls, "polling:\n  per_host: 1\n  concurrency: 8\n"))
        assert poll(config, store, now=NOW).count(FeedStatus.OK) == 6
    assert feed_server.max_in_flight == 1 and same_address.max_in_flight == 1
    assert most_at_once(feed_server.requests + same_address.requests) == 2


def test_a_host_waiting_for_its_slot_holds_no_overall_slot(
    feed_server: FeedServer, other_host: FeedServer, write_config: Callable[..., Path]
) -> None:
    """Six slow feeds of one host listed first take two of the three overall slots, never the
    third: the other host's feed gets it at once instead of waiting behind them."""
    urls = [*slow_feeds(feed_server, "a", 6), other_host.add("/b.xml", body=a_feed("b"))]
    config, store = opened(write_config(urls, "polling:\n  per_host: 2\n  concurrency: 3\n"))
    assert poll(config, store, now=NOW).count(FeedStatus.OK) == 7
    [other] = other_host.hits("/b.xml")
    assert other.at < min(r.finished for r in feed_server.requests)


# --- failures, backoff and recovery ------------------------------------------------------------


def test_a_failing_feed_backs_off_then_recovers(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/flaky", status=500)
    config, store = opened(write_config([url]))

    poll(config, store, now=NOW, rng=random.Random(5))
    view = feed_views(store, NOW)[0]
    assert (view.error_count, view.status) == (1, "error")
    assert view.next_due is not None
    first_wait = view.next_due - NOW
    assert HOUR <= first_wait <= 1.1 * HOUR  # one interval

    second_at = NOW + 3 * HOUR
    poll(config, store, now=second_at, all_feeds=True, rng=random.Random(5))
    view = feed_views(store, second_at)[0]
    assert (view.error_count, view.status) == (2, "backing off")
    assert view.next_due is not None
    second_wait = view.next_due - second_at
    # The same seed, the same jitter: exactly twice as long (times are kept to the second).
    assert second_wait.total_seconds() == pytest.approx(2 * first_wait.total_seconds(), abs=2)
    assert poll(config, store, now=second_at + first_wait).outcomes == ()  # not due yet

    feed_server.add("/flaky", body=a_feed("flaky"))
    healed_at = second_at + second_wait
    report = poll(config, store, now=healed_at)
    assert [o.status for o in report.outcomes] == [FeedStatus.OK]
    view = feed_views(store, healed_at)[0]
    assert (view.error_count, view.status) == (0, "ok")
    assert view.last_success == healed_at
    assert view.last_error is not None and "HTTP 500" in view.last_error  # still shown
    assert view.last_error_at == second_at


def test_the_network_down_counts_against_no_feed_however_often(
    write_config: Callable[..., Path],
) -> None:
    # Nothing listens on port 9 of these loopback addresses: both hosts refuse.
    urls = ["http://127.0.0.3:9/a.xml", "http://127.0.0.4:9/b.xml"]
    config, store = opened(write_config(urls, "polling:\n  interval: 1h\n"))
    for hours in (0, 3):
        now = NOW + timedelta(hours=hours)
        report = poll(config, store, now=now, all_feeds=True, rng=random.Random(2))
        assert len(report.failed) == 2
        for view in feed_views(store, now):
            assert view.error_count == 0
            assert "cannot connect" in (view.last_error or "")
            assert view.next_due is not None
            assert view.next_due - now <= 1.1 * HOUR  # no backoff: one interval each time


def test_one_dead_host_counts_against_its_feeds(write_config: Callable[..., Path]) -> None:
    path = write_config(["http://127.0.0.1:9/a.xml", "http://127.0.0.1:9/b.xml"])
    config, store = opened(path)
    poll(config, store, now=NOW)
    assert [f.error_count for f in store.feeds()] == [1, 1]


def test_dead_hosts_count_when_another_server_answered(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """A server that answered, even with an error, shows the network was up."""
    broken = feed_server.add("/broken", status=500)
    urls = ["http://127.0.0.3:9/a.xml", "http://127.0.0.4:9/b.xml", broken]
    config, store = opened(write_config(urls))
    report = poll(config, store, now=NOW)
    assert len(report.failed) == 3
    assert [v.error_count for v in feed_views(store, NOW)] == [1, 1, 1]


# --- the adaptive schedule ---------------------------------------------------------------------


def due_in(store: Store, url: str, now: datetime) -> timedelta:
    view = view_of(store, url, now)
    assert view.next_due is not None
    return view.next_due - now


def every(step: timedelta, count: int) -> list[datetime | None]:
    return [NOW - step * i for i in range(1, count + 1)]


def test_the_next_fetch_follows_each_feeds_pace_and_the_servers_word(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    ten_minutes = items("fast", every(10 * MINUTE, 10))
    ttl = rss("Ttl", items("ttl", every(10 * MINUTE, 10))).replace(
        b"<description>test", b"<ttl>180</ttl><description>test"
    )
    # Expires four hours after the server's own Date (its real clock, not the poll's NOW).
    expires = email.utils.formatdate(time.time() + 4 * 3600, usegmt=True)
    urls = {
        "fast": feed_server.add("/fast.xml", body=rss("Fast", ten_minutes)),
        "daily": feed_server.add("/daily.xml", body=rss("Daily", items("day", every(DAY, 5)))),
        "undated": feed_server.add("/undated.xml", body=rss("Undated", items("nd", [None] * 5))),
        "cached": feed_server.add(
            "/cached.xml",
            body=rss("Cached", items("cc", every(10 * MINUTE, 10))),
            headers={"Cache-Control": "public, max-age=7200"},
        ),
        "expires": feed_server.add(
            "/expires.xml",
            body=rss("Expires", items("ex", every(10 * MINUTE, 10))),
            headers={"Expires": expires},
        ),
        "ttl": feed_server.add("/ttl.xml", body=ttl),
    }
    config, store = opened(write_config(list(urls.values()), "polling:\n  interval: 3h\n"))
    report = poll(config, store, now=NOW, rng=random.Random(7))
    assert report.count(FeedStatus.OK) == len(urls)
    assert 5 * MINUTE <= due_in(store, urls["fast"], NOW) <= 10 * MINUTE
    assert 0.9 * 12 * HOUR <= due_in(store, urls["daily"], NOW) <= 1.1 * 12 * HOUR
    assert 0.9 * 3 * HOUR <= due_in(store, urls["undated"], NOW) <= 1.1 * 3 * HOUR
    assert 2 * HOUR <= due_in(store, urls["cached"], NOW) <= 1.1 * 2 * HOUR
    assert 4 * HOUR - MINUTE <= due_in(store, urls["expires"], NOW) <= 1.1 * 4 * HOUR
    assert 3 * HOUR <= due_in(store, urls["ttl"], NOW) <= 1.1 * 3 * HOUR


def test_without_adaptive_every_feed_gets_the_interval(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/fast.xml", body=rss("Fast", items("fast", every(10 * MINUTE, 10))))
    extra = "polling:\n  interval: 3h\n  adaptive: false\n"
    config, store = opened(write_config([url], extra))
    poll(config, store, now=NOW, rng=random.Random(7))
    assert 0.9 * 3 * HOUR <= due_in(store, url, NOW) <= 1.1 * 3 * HOUR


def test_a_304_keeps_the_learnt_pace_slowed_by_the_quiet_since(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add(
        "/fast.xml", body=rss("Fast", items("fast", every(10 * MINUTE, 10))), etag='"v1"'
    )
    config, store = opened(write_config([url], "polling:\n  interval: 3h\n"))
    poll(config, store, now=NOW, rng=random.Random(7))
    assert 5 * MINUTE <= due_in(store, url, NOW) <= 10 * MINUTE

    soon = NOW + 2 * MINUTE
    assert poll(config, store, now=soon, all_feeds=True).outcomes[0].status == (
        FeedStatus.NOT_MODIFIED
    )
    assert 5 * MINUTE <= due_in(store, url, soon) <= 10 * MINUTE  # the pace, not the interval

    quiet = NOW + DAY  # the newest item is a day old now: about every day, so half a day
    assert poll(config, store, now=quiet, all_feeds=True).outcomes[0].status == (
        FeedStatus.NOT_MODIFIED
    )
    assert 0.9 * 12 * HOUR <= due_in(store, url, quiet) <= 1.1 * 12 * HOUR + 10 * MINUTE


# --- parsing in worker processes ---------------------------------------------------------------

HTML_PAGE = b"<!doctype html><html><head><title>Sign in</title></head><body>Login</body></html>"
NOT_QUITE_JSON_FEED = b'{"version": "https://jsonfeed.org/version/1.1", "items": "none"}'


def serve_mixed_feeds(server: FeedServer) -> dict[str, str]:
    shared = {
        "guid": "wire-1",
        "title": "Harbour reopens after the storm",
        "link": "https://wire.example/harbour?utm_source=rss",
        "pubDate": http_date(NOW - 3 * HOUR),
    }
    copy = {**shared, "guid": "copy-1", "link": "https://wire.example/harbour"}
    return {
        "one": server.add("/one.xml", body=rss("One", [*items("one", every(HOUR, 3)), shared])),
        "two": server.add("/two.xml", body=rss("Two", [*items("two", every(HOUR, 2)), copy])),
        "three": server.add("/three.xml", body=rss("Three", items("three", every(DAY, 4)))),
        "four": server.add("/four.xml", body=rss("Four", items("four", [None, None]))),
        "five": server.add("/five.xml", body=rss("Five", items("five", every(MINUTE, 1)))),
        "html": server.add("/page", body=HTML_PAGE, headers={"Content-Type": "text/html"}),
        "bad": server.add(
            "/bad.json", body=NOT_QUITE_JSON_FEED, headers={"Content-Type": "application/json"}
        ),
    }


def stored_articles(store: Store) -> list[tuple[str, tuple[str, ...]]]:
    """Each article's title and the feeds it was seen in (which one holds the original depends
    on which arrived first, so the feeds are sorted together)."""
    return sorted(
        (a.title, tuple(sorted([a.feed, *(d.feed for d in a.duplicates)])))
        for a in store.articles(since=None, limit=0)
    )


def test_parsing_in_worker_processes_stores_what_parsing_here_does(
    feed_server: FeedServer, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    urls = serve_mixed_feeds(feed_server)
    results = {}
    for workers in (2, 0):
        path = write_config(list(urls.values()), f"polling:\n  parse_workers: {workers}\n")
        config = load_config(path, environ={})
        config = dataclasses.replace(config, database=tmp_path / f"workers-{workers}.db")
        store = open_store(config.database)
        report = poll(config, store, now=NOW)
        # Which of two feeds carrying one article stores it depends on which arrives first.
        statuses = {o.url: (o.status, o.message) for o in report.outcomes}
        stored = (report.new_articles, stored_articles(store), report.stories_touched > 0)
        results[workers] = (statuses, *stored)
        store.close()

    assert results[2] == results[0]
    statuses, new_articles, articles, clustered = results[2]
    assert clustered
    assert statuses[urls["html"]] == (
        FeedStatus.NOT_A_FEED,
        "the server sent an HTML page, not a feed",
    )
    assert statuses[urls["bad"]] == (FeedStatus.ERROR, "JSON Feed without an items list")
    assert [s for s, _ in statuses.values()].count(FeedStatus.OK) == 5
    # one, two, three, four and five's own items, and the wire story once
    assert new_articles == len(articles) == 3 + 2 + 4 + 2 + 1 + 1
    harbour = [feeds for title, feeds in articles if title.startswith("Harbour")]
    assert harbour == [("One", "Two")]  # one article, seen in two feeds


def test_a_parse_error_in_a_worker_comes_back_whole() -> None:
    url = "https://bad.example/feed.json"

    async def read(pool: ParserPool) -> None:
        await pool.read(url, NOT_QUITE_JSON_FEED, {"content-type": "application/json"}, NOW)

    with ParserPool(1) as pool, pytest.raises(ParseError) as error:
        asyncio.run(read(pool))
    assert pool.in_processes
    assert (error.value.url, error.value.message) == (url, "JSON Feed without an items list")
    assert str(error.value) == f"{url}: JSON Feed without an items list"


# --- not a feed --------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/rss+xml"])
def test_an_html_page_is_not_a_feed_rather_than_zero_new(
    feed_server: FeedServer, write_config: Callable[..., Path], content_type: str
) -> None:
    url = feed_server.add("/feed", body=HTML_PAGE, headers={"Content-Type": content_type})
    config, store = opened(write_config([url]))
    report = poll(config, store, now=NOW)
    [outcome] = report.outcomes
    assert outcome.status == FeedStatus.NOT_A_FEED and outcome.failed
    assert outcome.message == "the server sent an HTML page, not a feed"
    assert report.summary().startswith("1 feed: 0 ok, 0 not modified, 1 failed;")
    feed = store.feeds()[0]
    assert feed.status == FeedStatus.NOT_A_FEED and feed.error_count == 1
    view = feed_views(store, NOW)[0]
    assert view.last_error == outcome.message and view.last_success is None
