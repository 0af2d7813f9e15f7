"""poll, end to end: a real HTTP server on loopback and a real SQLite file."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.delivery import ALL_TIME, build_digest
from aggregator.listing import feed_views, get_story, ranked_stories
from aggregator.models import FeedStatus, PollReport
from aggregator.pipeline import poll
from aggregator.store import open_store
from aggregator.stories import cluster_pending

from .conftest import FeedServer, etag_of, opened, rss

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

SUMMIT_A = [
    {
        "guid": "a-1",
        "title": "Varnek and Deslin agree Velmora ceasefire at Lindqvar summit",
        "link": "https://a.example/velmora-ceasefire?utm_source=rss",
        "description": "<p>The two leaders agreed a <b>ceasefire</b> in Velmora province.</p>",
        "pubDate": "Tue, 24 Nov 2026 09:00:00 +0000",
    },
    {
        "guid": "a-2",
        "title": "Norvania central bank raises rates to 4.75%",
        "link": "https://a.example/norvania-rates",
        "description": "Inflation stuck at 3.8% pushed the Norvania central bank to raise rates.",
        "pubDate": "Tue, 24 Nov 2026 10:00:00 +0000",
    },
]
SUMMIT_B = [
    {
        "guid": "b-1",
        "title": "Velmora ceasefire: Varnek, Deslin seal deal at Lindqvar summit",
        "link": "https://b.example/world/velmora",
        "description": "Leaders Varnek and Deslin sealed a Velmora ceasefire at the summit.",
        "pubDate": "Tue, 24 Nov 2026 09:30:00 +0000",
    },
    {
        # The same wire article as a-2's page, with tracking junk: one article, two sightings.
        "guid": "b-2",
        "title": "Norvania central bank raises rates to 4.75%",
        "link": "https://a.example/norvania-rates?utm_medium=feed&amp;fbclid=xyz",
        "description": "Inflation stuck at 3.8% pushed the Norvania central bank to raise rates.",
        "pubDate": "Tue, 24 Nov 2026 10:05:00 +0000",
    },
]


def status_by_path(report: PollReport) -> dict[str, FeedStatus]:
    """Each feed's outcome, by the last part of its URL."""
    return {o.url.rsplit("/", 1)[1]: o.status for o in report.outcomes}


def setup(
    feed_server: FeedServer, write_config: Callable[..., Path], *extra: str
) -> tuple[Path, list[str]]:
    body_a, body_b = rss("Outlet A", SUMMIT_A), rss("Outlet B", SUMMIT_B)
    urls = [
        feed_server.add("/a.xml", body=body_a, etag=etag_of(body_a)),
        feed_server.add("/b.xml", body=body_b, last_modified="Tue, 24 Nov 2026 10:10:00 GMT"),
        *extra,
    ]
    return write_config(urls), urls


def test_poll_stores_dedupes_and_clusters(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    path, _ = setup(feed_server, write_config)
    config, store = opened(path)
    report = poll(config, store, now=NOW, rng=random.Random(1))
    assert report.count(FeedStatus.OK) == 2
    assert report.new_articles == 3  # b-2 is a-2 under another URL
    articles = store.articles(since=None, limit=0)
    assert len(articles) == 3
    rates = next(a for a in articles if "Norvania" in a.title)
    # Feeds are stored as they arrive: either outlet may hold the original, the other the copy.
    assert len(rates.duplicates) == 1
    assert {rates.feed, rates.duplicates[0].feed} == {"Outlet A", "Outlet B"}
    summit = [a for a in articles if "Velmora" in a.title]
    assert len(summit) == 2 and summit[0].story_id == summit[1].story_id is not None
    story = get_story(store, summit[0].story_id)
    assert story.size == 2 and set(story.sources) == {"Outlet A", "Outlet B"}
    assert "velmora" in story.terms
    assert story.first_seen == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert story.last_seen == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    # HTML stripped, tracking stripped from the canonical URL
    first = next(a for a in articles if a.title.startswith("Varnek"))
    assert "<" not in first.summary and "ceasefire" in first.summary


def test_second_poll_is_conditional_and_adds_nothing(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    path, _ = setup(feed_server, write_config)
    config, store = opened(path)
    poll(config, store, now=NOW)
    stories_before = {s.id: s.size for s in ranked_stories(store, since=None, min_size=1, limit=0)}
    report = poll(config, store, now=NOW + timedelta(hours=2), all_feeds=True)
    assert report.new_articles == 0
    assert report.count(FeedStatus.NOT_MODIFIED) == 2
    assert feed_server.hits("/a.xml")[-1].headers["if-none-match"] == etag_of(
        rss("Outlet A", SUMMIT_A)
    )
    assert (
        feed_server.hits("/b.xml")[-1].headers["if-modified-since"]
        == "Tue, 24 Nov 2026 10:10:00 GMT"
    )
    after = {s.id: s.size for s in ranked_stories(store, since=None, min_size=1, limit=0)}
    assert after == stories_before


def test_schedule_skips_feeds_not_yet_due(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    path, _ = setup(feed_server, write_config)
    config, store = opened(path)
    poll(config, store, now=NOW)
    report = poll(config, store, now=NOW + timedelta(minutes=5))
    assert report.outcomes == ()
    report = poll(config, store, now=NOW + timedelta(hours=2))
    assert len(report.outcomes) == 2


def test_story_ids_are_stable_as_stories_grow(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    path, _ = setup(feed_server, write_config)
    config, store = opened(path)
    poll(config, store, now=NOW)
    summit_id = next(
        a.story_id for a in store.articles(since=None, limit=0) if "Velmora" in a.title
    )
    day_one = {
        "guid": "a-3",
        "title": "Velmora ceasefire holds on first day after Lindqvar summit deal",
        "link": "https://a.example/velmora-day-one",
        "description": "The Velmora ceasefire agreed by Varnek and Deslin held overnight.",
        "pubDate": "Tue, 24 Nov 2026 13:00:00 +0000",
    }
    later = [*SUMMIT_A, day_one]
    body = rss("Outlet A", later)
    feed_server.add("/a.xml", body=body, etag=etag_of(body))
    store.close()
    store = open_store(config.database)  # a new run
    poll(config, store, now=NOW + timedelta(hours=2), all_feeds=True)
    grown = get_story(store, summit_id)
    assert grown.size == 3
    assert "Velmora ceasefire holds on first day after Lindqvar summit deal" in [
        a.title for a in grown.articles
    ]


def test_one_broken_feed_never_stops_a_poll(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    feed_server.add(
        "/html",
        body=b"<!doctype html><html><body>Login</body></html>",
        headers={"Content-Type": "text/html"},
    )
    feed_server.add("/err", status=500)
    path, _ = setup(
        feed_server,
        write_config,
        feed_server.url("/html"),
        feed_server.url("/err"),
        feed_server.url("/missing"),
    )
    config, store = opened(path)
    report = poll(config, store, now=NOW)
    statuses = status_by_path(report)
    assert statuses == {
        "a.xml": FeedStatus.OK,
        "b.xml": FeedStatus.OK,
        "html": FeedStatus.NOT_A_FEED,
        "err": FeedStatus.ERROR,
        "missing": FeedStatus.ERROR,
    }
    assert report.new_articles == 3
    views = {v.url.rsplit("/", 1)[1]: v for v in feed_views(store, NOW)}
    assert views["err"].error_count == 1 and "HTTP 500" in (views["err"].last_error or "")
    assert "HTML page" in (views["html"].last_error or "")


def test_articles_stored_but_not_clustered_are_clustered_later(
    feed_server: FeedServer, write_config: Callable[..., Path], monkeypatch
) -> None:
    """A run that dies between storing and clustering loses nothing: the next run clusters."""
    import aggregator.pipeline as pipeline

    path, _ = setup(feed_server, write_config)
    config, store = opened(path)
    monkeypatch.setattr(pipeline, "cluster_pending", lambda *a, **k: 0)
    poll(config, store, now=NOW)
    assert all(a.story_id is None for a in store.articles(since=None, limit=0))
    monkeypatch.undo()
    assert cluster_pending(store, config, now=NOW) > 0
    assert all(a.story_id is not None for a in store.articles(since=None, limit=0))


def test_digest_lists_multi_source_stories_and_failing_feeds(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    feed_server.add("/err", status=500)
    path, _ = setup(feed_server, write_config, feed_server.url("/err"))
    config, store = opened(path)
    poll(config, store, now=NOW - timedelta(days=2))
    digest = build_digest(store, config, since=ALL_TIME, limit=10, now=NOW)
    # The summit (two articles), and the rates wire story: one article, carried by both outlets.
    assert sorted((s.size, len(s.sources)) for s in digest.stories) == [(1, 2), (2, 2)]
    assert digest.failing_feeds and "HTTP 500" in digest.failing_feeds[0][1]


def test_identical_body_without_validators_is_not_parsed_again(
    feed_server: FeedServer, write_config: Callable[..., Path], monkeypatch
) -> None:
    import aggregator.workers as workers

    url = feed_server.add("/plain.xml", body=rss("Plain", SUMMIT_A))
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 2
    parsed: list[str] = []
    real_parse = workers.parse_feed
    monkeypatch.setattr(workers, "parse_feed", lambda *a: parsed.append(a[0]) or real_parse(*a))
    again = poll(config, store, now=NOW + timedelta(hours=2), all_feeds=True)
    assert again.outcomes[0].status == FeedStatus.OK and again.outcomes[0].message == "unchanged"
    assert parsed == []
    feed_server.add("/plain.xml", body=rss("Plain", SUMMIT_B))
    changed = poll(config, store, now=NOW + timedelta(hours=4), all_feeds=True)
    assert parsed == [url] and changed.new_articles == 1


def test_hostile_headers_and_fields_never_stop_a_poll(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """A superscript digit, a huge Retry-After or a huge <ttl> is one feed's problem."""
    feed_server.add("/sup", status=503, headers={"Retry-After": "²"})
    feed_server.add("/huge", status=429, headers={"Retry-After": "9" * 30})
    ttl = rss("TTL", SUMMIT_B).replace(
        b"<description>test", b"<ttl>99999999999999999</ttl><description>t"
    )
    good = rss("Good", SUMMIT_A)
    urls = [
        feed_server.add("/ttl", body=ttl),
        feed_server.url("/sup"),
        feed_server.url("/huge"),
        feed_server.add("/good", body=good),
    ]
    config, store = opened(write_config(urls))
    report = poll(config, store, now=NOW)
    statuses = status_by_path(report)
    assert statuses == {
        "ttl": FeedStatus.OK,
        "sup": FeedStatus.ERROR,
        "huge": FeedStatus.ERROR,
        "good": FeedStatus.OK,
    }
    assert report.new_articles == 3
    feeds = {f.url.rsplit("/", 1)[1]: f for f in store.feeds()}
    assert feeds["ttl"].ttl_minutes == 7 * 24 * 60  # capped at a week
    assert feeds["huge"].next_due is not None and feeds["huge"].next_due <= NOW + timedelta(days=7)


def test_a_date_in_year_one_is_taken_as_first_seen(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    item = {**SUMMIT_A[0], "pubDate": "Mon, 01 Jan 0001 00:00:00 +0000"}
    url = feed_server.add("/old", body=rss("Old", [item, SUMMIT_A[1]]))
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 2
    published = {a.title: a.published for a in store.articles(since=None, limit=0)}
    assert published[item["title"]] == NOW
    assert all(a.story_id for a in store.articles(since=None, limit=0))
    # and the next poll still clusters
    feed_server.add("/old", body=rss("Old", [item, *SUMMIT_B]))
    assert poll(config, store, now=NOW + timedelta(hours=2), all_feeds=True).new_articles == 1


def test_a_feed_pointing_every_item_at_its_home_page_loses_none(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    def note(day: str) -> dict[str, str]:
        return {"guid": day, "title": f"Notes for {day}", "link": "https://note.example/"}

    url = feed_server.add("/notes", body=rss("Notes", [note("Monday")]))
    config, store = opened(write_config([url]))
    poll(config, store, now=NOW)
    feed_server.add("/notes", body=rss("Notes", [note("Tuesday")]))
    assert poll(config, store, now=NOW + timedelta(days=1), all_feeds=True).new_articles == 1
    titles = sorted(a.title for a in store.articles(since=None, limit=0))
    assert titles == ["Notes for Monday", "Notes for Tuesday"]


def test_a_copy_seen_later_in_another_feed_adds_a_source_to_the_ranking(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    path, urls = setup(feed_server, write_config)
    config, store = opened(path)
    poll(config, store, now=NOW)
    summit = next(
        s for s in ranked_stories(store, since=None, min_size=2, limit=0) if "Velmora" in s.title
    )
    assert len(summit.sources) == 2
    copy = {
        **SUMMIT_A[0],
        "guid": "c-1",
        "link": "https://a.example/velmora-ceasefire?utm_campaign=x",
    }
    third = feed_server.add("/c.xml", body=rss("Outlet C", [copy]))
    config, store = opened(write_config([*urls, third]))
    poll(config, store, now=NOW + timedelta(hours=2))
    row = store.db.execute("SELECT source_count FROM stories WHERE id = ?", [summit.id]).fetchone()
    assert row[0] == 3 == len(get_story(store, summit.id).sources)


def test_two_feeds_with_one_name_are_two_sources(
    feed_server: FeedServer, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    a = feed_server.add("/a.xml", body=rss("Courier", SUMMIT_A[:1]))
    b = feed_server.add("/b.xml", body=rss("Courier", SUMMIT_B[:1]))
    config, store = opened(write_config([a, b]))
    poll(config, store, now=NOW)
    story = ranked_stories(store, since=None, min_size=2, limit=0)[0]
    assert story.sources == ("Courier", "Courier")
    assert story.to_json()["sources"] == 2


def test_polls_at_once_store_and_place_each_article_once(tmp_path: Path) -> None:
    """Three real processes on one new database: migrating, dedupe and clustering each read and
    write in one transaction, so none migrates twice, stores an article twice or places one
    twice."""
    import subprocess
    import sys

    from .conftest import EXAMPLES, ROOT

    db = tmp_path / "race.db"
    command = [
        sys.executable, "-c", "from cli import cli; cli()",
        "--config", str(EXAMPLES / "offline.yaml"), "--db", str(db), "-q", "poll",
    ]  # fmt: skip
    runs = [subprocess.Popen(command, cwd=ROOT) for _ in range(3)]
    assert [run.wait(timeout=60) for run in runs] == [0, 0, 0]
    store = open_store(db)
    one = store.db.execute
    articles = one("SELECT COUNT(*) FROM articles").fetchone()[0]
    assert articles == 46
    assert one("SELECT COUNT(*) FROM story_articles").fetchone()[0] == articles
    assert store.document_count() == articles  # term frequencies counted once
    empty = """SELECT COUNT(*) FROM stories s
               WHERE NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.story_id = s.id)"""
    assert one(empty).fetchone()[0] == 0


WIRE = {
    "guid": "w-1",
    "title": "Quillon recalls 40,000 Aero 7 phones over battery fault",
    "link": "https://wire.example/quillon-recall",
    "description": "Quillon is recalling 40,000 Aero 7 phones after reports of batteries swelling.",
    "pubDate": "Tue, 24 Nov 2026 08:00:00 +0000",
}
REPUBLISHED = {
    # The same wire article on another outlet: its own URL, a slug, its name, one word dropped.
    "guid": "r-1",
    "title": "UPDATE 1-Quillon recalls 40,000 Aero 7 phones over fault - Daily Ledger",
    "link": "https://ledger.example/business/2026/11/24/quillon-recall?utm_source=rss",
    "description": "Quillon is recalling 40,000 Aero 7 phones after reports of batteries swelling.",
    "pubDate": "Tue, 24 Nov 2026 11:00:00 +0000",
}
OWN_REPORT = {
    # The same event in the outlet's own words: another article in the same story.
    "guid": "r-2",
    "title": "Quillon battery fault: Aero 7 owners told to stop charging their phones",
    "link": "https://ledger.example/tech/quillon-battery",
    "description": "Owners of the Aero 7 should stop charging it until Quillon replaces it.",
    "pubDate": "Tue, 24 Nov 2026 11:30:00 +0000",
}


@pytest.mark.parametrize("near_duplicates", [True, False])
def test_a_republished_wire_article_is_one_article_with_its_copy_listed(
    feed_server: FeedServer, write_config: Callable[..., Path], near_duplicates: bool
) -> None:
    wire = feed_server.add("/wire.xml", body=rss("Wire", [WIRE]))
    ledger = feed_server.add("/ledger.xml", body=rss("Daily Ledger", [REPUBLISHED, OWN_REPORT]))
    extra = f"dedupe:\n  near_duplicates: {str(near_duplicates).lower()}\n"
    # The wire first: within one poll, which of two feeds is stored first is up to the network.
    config, store = opened(write_config([wire], extra))
    poll(config, store, now=NOW)
    config, store = opened(write_config([wire, ledger], extra))
    poll(config, store, now=NOW + timedelta(minutes=30))
    listed = {a.title: a for a in store.articles(since=None, limit=0)}
    if not near_duplicates:
        assert len(listed) == 3
        return
    assert sorted(listed) == sorted([WIRE["title"], OWN_REPORT["title"]])
    original = listed[WIRE["title"]]
    assert original.url == WIRE["link"]
    assert [(d.url, d.feed) for d in original.duplicates] == [(REPUBLISHED["link"], "Daily Ledger")]
    story = get_story(store, original.story_id or 0)
    assert {a.id for a in story.articles} == {original.id, listed[OWN_REPORT["title"]].id}
    assert sorted(story.sources) == ["Daily Ledger", "Wire"]
    # a later poll sees the copy as known, not as news
    assert poll(config, store, now=NOW + timedelta(hours=1), all_feeds=True).new_articles == 0


def test_guids_regenerated_on_every_fetch_do_not_flood_the_store(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    def items(generation: int) -> list[dict[str, str]]:
        return [
            {
                "guid": f"urn:uuid:{generation}-{n}",
                "title": f"Harbour notice number {n} for shipping",
                "description": f"Notice {n}: the east channel is closed to shipping.",
                "pubDate": f"Tue, 24 Nov 2026 0{n}:00:00 +0000",
            }
            for n in range(1, 5)
        ]

    url = feed_server.add("/churn.xml", body=rss("Port", items(1)))
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 4
    feed_server.add("/churn.xml", body=rss("Port", items(2)))
    assert poll(config, store, now=NOW + timedelta(hours=1), all_feeds=True).new_articles == 0
    assert store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 4
    # The same text on another day is another item (a daily notice), not churn.
    again = {**items(3)[0], "pubDate": "Wed, 25 Nov 2026 01:00:00 +0000"}
    feed_server.add("/churn.xml", body=rss("Port", [again, *items(3)[1:]]))
    assert poll(config, store, now=NOW + timedelta(days=1), all_feeds=True).new_articles == 1


def test_a_story_is_in_the_window_of_its_latest_sighting_a_copy_included(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    feed_server.add("/a.xml", body=rss("Outlet A", SUMMIT_A))
    feed_server.add("/b.xml", body=rss("Outlet B", []))
    path = write_config([feed_server.url("/a.xml"), feed_server.url("/b.xml")])
    config, store = opened(path)
    poll(config, store, now=NOW)
    later = NOW + timedelta(days=2)

    def window() -> list[str]:
        found = ranked_stories(
            store, since=later - timedelta(hours=1), min_size=1, limit=0, now=later
        )
        return [s.title for s in found]

    assert (
        len(ranked_stories(store, since=NOW - timedelta(hours=1), min_size=1, limit=0, now=NOW))
        == 2
    )
    assert window() == []
    # Two days on, Outlet B carries a copy of A's rates article: that story is back in the
    # window (with its second source), the summit story is not.
    feed_server.add("/b.xml", body=rss("Outlet B", [SUMMIT_B[1]]))
    poll(config, store, now=later, all_feeds=True)
    assert window() == [SUMMIT_A[1]["title"]]
    (story,) = ranked_stories(
        store, since=later - timedelta(hours=1), min_size=2, limit=0, now=later
    )
    assert story.sources == ("Outlet A", "Outlet B")
    store.close()


def test_a_poll_takes_its_http_session_from_the_caller(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """The seam where a test swaps the network: here, names that exist nowhere resolve to the
    loopback server, and the feed is fetched with the caller's session and its headers."""
    import socket

    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

    class Loopback(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(
                    hostname=host,
                    host="127.0.0.1",
                    port=port,
                    family=socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]

        async def close(self) -> None:
            pass

    made: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        made.append(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=Loopback()),
                headers={"User-Agent": "swapped-network-test"},
            )
        )
        return made[-1]

    feed_server.add("/wire.xml", body=rss("Wire", SUMMIT_A))
    port = feed_server.httpd.server_address[1]
    config, store = opened(write_config([f"http://wire.invalid:{port}/wire.xml"]))
    report = poll(config, store, now=NOW, http=session)
    assert [o.status for o in report.outcomes] == [FeedStatus.OK]
    assert report.new_articles == len(SUMMIT_A)
    [request] = feed_server.hits("/wire.xml")
    assert request.headers["host"] == f"wire.invalid:{port}"
    assert request.headers["user-agent"] == "swapped-network-test"
    assert len(made) == 1 and made[0].closed  # made inside the poll, and closed by it
