"""Cron, replayed with an injected clock: `run` every 30 minutes for three simulated days with
``digest.at: ["07:00", "18:00"]``, mailing to a real aiosmtpd server on loopback.

The news is made up here: stories of one to four outlets, their articles an hour or two apart,
some growing across a digest time. Each run first rewrites the five outlets' feeds (local
files) to hold what was published by then.
"""

from __future__ import annotations

import random
import re
import signal
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from aggregator.config import Config, digest_times, digest_zone, load_config
from aggregator.cron import cron_run, feeds_alert
from aggregator.digest import latest_slot, next_slot
from aggregator.errors import ConfigError, DeliveryError
from aggregator.models import (
    Delivery,
    DeliveryOutcome,
    FeedOutcome,
    FeedStatus,
    PollReport,
    RunReport,
)
from aggregator.render import render_run, span
from aggregator.store import open_store
from cli import cli

from .conftest import EXAMPLES, FeedServer
from .processes import aggregator_process
from .smtp import SmtpServer
from .test_mail import EASTBAY

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=30)
DAYS = 3
OUTLETS = ["Northgate Herald", "Meridian Wire", "Pacific Ledger", "Alpine Courier", "Tech Quarter"]
SLOTS = (time(7, 0), time(18, 0))
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ru",
    "ven",
    "tor",
    "sal",
    "qui",
    "bex",
    "dra",
    "fen",
    "gol",
    "hur",
    "jin",
    "zep",
    "wyl",
    "orn",
    "pax",
]


@dataclass(frozen=True)
class Item:
    story: int
    outlet: str
    published: datetime
    title: str
    summary: str
    guid: str


def made_up_news(seed: int = 19) -> list[Item]:
    """Thirty stories over three days, each with four words no other story uses."""
    rng = random.Random(seed)
    used: set[str] = set()

    def word() -> str:
        while True:
            w = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
            if w not in used:
                used.add(w)
                return w

    items: list[Item] = []
    for story in range(30):
        place, person, thing, body = word(), word(), word(), word()
        begins = START + timedelta(minutes=rng.randrange(0, (DAYS * 24 - 6) * 60, 10))
        outlets = rng.sample(OUTLETS, rng.choice([1, 2, 2, 3, 3, 4]))
        at = begins
        for n, outlet in enumerate(outlets):
            # Only the story's own words and words of this article alone: nothing that two
            # stories share, so the clusterer finds the stories as they were made.
            items.append(
                Item(
                    story,
                    outlet,
                    at,
                    f"{person} {place} {thing} {body} {word()} {word()}",
                    f"{person} {place} {thing} {body} {word()} {word()} {word()}. "
                    f"{thing} {body} {place} {word()} {word()} {word()}.",
                    f"s{story}-{n}",
                )
            )
            at += timedelta(minutes=rng.randrange(40, 150, 10))
    return sorted(items, key=lambda i: i.published)


def write_feeds(directory: Path, items: list[Item], now: datetime) -> list[Path]:
    paths = []
    for outlet in OUTLETS:
        shown = [i for i in items if i.outlet == outlet and i.published <= now][-50:]
        entries = "".join(
            f"<item><title>{escape(i.title)}</title>"
            f"<link>https://{outlet.split()[0].lower()}.example/{i.guid}</link>"
            f"<guid isPermaLink='false'>{i.guid}</guid>"
            f"<pubDate>{format_datetime(i.published)}</pubDate>"
            f"<description>{escape(i.summary)}</description></item>"
            for i in reversed(shown)
        )
        path = directory / f"{outlet.split()[0].lower()}.xml"
        path.write_text(
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{outlet}</title><link>https://{outlet.split()[0].lower()}.example/</link>"
            f"<description>made up</description>{entries}</channel></rss>",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def write_config(directory: Path, port: int, feeds: list[Path]) -> Config:
    path = directory / "config.yaml"
    path.write_text(
        f"database: {directory / 'news.db'}\nfeeds:\n"
        + "".join(f"  - {p}\n" for p in feeds)
        + "polling:\n  parse_workers: 0\n"
        + 'digest:\n  at: ["07:00", "18:00"]\n  timezone: UTC\n  limit: 3\n'
        + f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {port}\n  security: none\n"
        + "  from: news@example.org\n  to: [reader@example.org]\n",
        encoding="utf-8",
    )
    return load_config(path)


def sources_by(items: list[Item], now: datetime) -> dict[int, int]:
    """Each made-up story's outlets by ``now``."""
    outlets: defaultdict[int, set[str]] = defaultdict(set)
    for item in items:
        if item.published <= now:
            outlets[item.story].add(item.outlet)
    return {story: len(names) for story, names in outlets.items()}


def clock() -> Iterator[datetime]:
    """Every 30 minutes for three days, except while the machine sleeps on the third day
    from 05:00 to 19:00, through both of that day's digest times; then the fourth morning."""
    now = START
    asleep = (START + timedelta(days=2, hours=5), START + timedelta(days=2, hours=19))
    while now < START + timedelta(days=DAYS):
        if not asleep[0] <= now < asleep[1]:
            yield now
        now += STEP
    yield START + timedelta(days=DAYS, hours=7)  # the next morning's digest, at 07:00 sharp


@pytest.mark.slow
def test_three_days_of_cron_mail_one_digest_per_due_time_with_news(
    tmp_path: Path,
) -> None:
    items = made_up_news()
    faults = {
        START + timedelta(days=1, hours=7): "451 4.3.0 busy, try later",
        START + timedelta(days=1, hours=18): "554 5.7.1 refused",
    }
    mails_by_run: dict[datetime, int] = {}
    expected_by_run: dict[datetime, int] = {}
    handled: datetime | None = None
    shown: dict[int, int] = {}  # what the reader has been mailed: story -> sources
    refused: datetime | None = None
    due_with_news = 0
    with SmtpServer() as server:
        for now in clock():
            config = write_config(tmp_path, server.port, write_feeds(tmp_path, items, now))
            server.mailbox.data_reply = faults.get(now)
            before = len(server.received)
            store = open_store(config.database)
            try:
                report = cron_run(config, store, write=lambda d: None, now=now, all_feeds=True)
            except DeliveryError:
                assert now in faults
                refused = now
            finally:
                store.close()
            mails_by_run[now] = len(server.received) - before

            # What should have happened, worked out from the made-up news alone.
            slot = latest_slot(now, SLOTS, UTC)
            due = handled is not None and slot is not None and slot > handled
            if handled is None or due:
                handled = slot
            news = {
                s: n for s, n in sources_by(items, now).items() if n >= 2 and n > shown.get(s, 0)
            }
            expected = 1 if due and news else 0
            if due and news:
                shown.update(news)
                due_with_news += 1
            if refused is not None and refused != now:
                expected += 1  # the refused digest goes out from the outbox first
                refused = None
            if now in faults:
                expected = 0
            expected_by_run[now] = expected
            if now not in faults:
                assert not report.alert

        received = list(server.received)

    assert mails_by_run == expected_by_run
    # Six digest times passed while the machine was awake (the third day's 07:00 was slept
    # through); the made-up news gives most of them something to say.
    assert 4 <= due_with_news <= 6
    assert len(server.received) == due_with_news  # one mail each, faults or not
    # The sleeping machine woke at 19:00 on the third day: one digest, for 18:00 only.
    woke = START + timedelta(days=2, hours=19)
    assert mails_by_run[woke] == expected_by_run[woke] == 1

    # Nothing lost: every story of two sources or more reached a mail, with all its sources.
    mailed: dict[int, int] = {}
    repeated = 0
    ids = [m.message["Message-ID"] for m in received]
    assert len(ids) == len(set(ids))  # no message twice
    for mail in received:
        for pair in str(mail.message["X-Aggregator-Stories"]).split():
            story, sources = (int(x) for x in pair.split(":"))
            if story in mailed and sources <= mailed[story]:
                repeated += 1
            mailed[story] = max(mailed.get(story, 0), sources)
    assert repeated == 0
    final = sources_by(items, START + timedelta(days=DAYS, hours=7))
    assert sorted(mailed.values()) == sorted(n for n in final.values() if n >= 2)
    # Every mail past the first three stories lists the rest: none is left over.
    assert any("more stor" in m.message.get_body(("plain",)).get_content() for m in received)


# --- the schedule, pure ---------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_latest_and_next_digest_times() -> None:
    assert latest_slot(at("2026-03-02T06:59:00+00:00"), SLOTS, UTC) == at(
        "2026-03-01T18:00:00+00:00"
    )
    assert latest_slot(at("2026-03-02T07:00:00+00:00"), SLOTS, UTC) == at(
        "2026-03-02T07:00:00+00:00"
    )
    assert latest_slot(at("2026-03-02T23:59:00+00:00"), SLOTS, UTC) == at(
        "2026-03-02T18:00:00+00:00"
    )
    assert next_slot(at("2026-03-02T07:00:00+00:00"), SLOTS, UTC) == at("2026-03-02T18:00:00+00:00")
    assert next_slot(at("2026-03-02T18:30:00+00:00"), SLOTS, UTC) == at("2026-03-03T07:00:00+00:00")
    assert latest_slot(START, (), UTC) is None and next_slot(START, (), UTC) is None


def test_digest_times_follow_the_zone_and_its_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    morning = (time(7, 0),)
    # 07:00 in Paris is 06:00 UTC in winter, 05:00 UTC once the clocks go forward (29 March).
    assert latest_slot(at("2026-03-28T12:00:00+00:00"), morning, paris) == at(
        "2026-03-28T06:00:00+00:00"
    )
    assert latest_slot(at("2026-03-30T12:00:00+00:00"), morning, paris) == at(
        "2026-03-30T05:00:00+00:00"
    )
    following = next_slot(at("2026-03-28T12:00:00+00:00"), morning, paris)
    assert following is not None and following.utcoffset() == timedelta(hours=2)
    assert following.astimezone(UTC) == at("2026-03-29T05:00:00+00:00")


def test_a_machine_that_slept_through_several_times_owes_only_the_latest() -> None:
    handled = at("2026-03-02T07:00:00+00:00")
    woke = at("2026-03-04T09:00:00+00:00")  # 18:00, 07:00, 18:00 and 07:00 went by
    assert latest_slot(woke, SLOTS, UTC) == at("2026-03-04T07:00:00+00:00") > handled


# --- the config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ('digest:\n  at: ["7am"]\n', "digest.at[0]: expected a time of day such as 07:00"),
        ('digest:\n  at: ["07:00", "24:00"]\n', "digest.at[1]: expected a time of day"),
        (
            "digest:\n  timezone: Europe/Parys\n",
            "digest.timezone: 'Europe/Parys' is not a time zone",
        ),
        ("polling:\n  alert_after: 0s\n", "polling.alert_after: must be positive"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_the_key(
    tmp_path: Path, yaml: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, environ={})


def test_digest_times_as_written_in_yaml_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("digest:\n  at: [18:00, 07:30, '12:15']\n  timezone: Asia/Tokyo\n")
    digest = load_config(path, environ={}).digest
    # YAML reads an unquoted 18:00 as 1080: it is read back as the time it was.
    assert digest_times(digest) == (time(7, 30), time(12, 15), time(18, 0))
    assert digest_zone(digest) == ZoneInfo("Asia/Tokyo")
    one = load_config(path, environ={"AGGREGATOR_DIGEST_AT": "18:30"}).digest
    assert digest_times(one) == (time(18, 30),)  # one time, unquoted in YAML's eyes: 1110
    env = {"AGGREGATOR_DIGEST_AT": '["06:45"]', "AGGREGATOR_DIGEST_TIMEZONE": "UTC"}
    digest = load_config(path, environ=env).digest
    assert digest_times(digest) == (time(6, 45),) and digest.timezone == "UTC"
    assert (
        digest_times(
            load_config(tmp_path / "config.yaml", environ={"AGGREGATOR_DIGEST_AT": "[]"}).digest
        )
        == ()
    )


# --- cron that says when something is wrong ------------------------------------------------------


def poll_report(*statuses: FeedStatus) -> PollReport:
    outcomes = tuple(
        FeedOutcome(
            f"https://{n}.example/feed",
            status,
            message=None if status == FeedStatus.OK else "HTTP 500",
        )
        for n, status in enumerate(statuses)
    )
    return PollReport(outcomes, new_articles=0, stories_touched=0, seconds=0.1)


def test_every_feed_failing_is_said_on_every_run() -> None:
    line, once_a_day = feeds_alert(
        poll_report(FeedStatus.ERROR, FeedStatus.ERROR), [], timedelta(days=2), START, START
    )
    assert line is not None and line.startswith("all 2 feeds polled failed (is the network down?)")
    assert "\n" not in line and not once_a_day
    assert feeds_alert(
        poll_report(FeedStatus.ERROR, FeedStatus.OK), [], timedelta(days=2), START, None
    ) == (None, False)
    assert feeds_alert(poll_report(), [], timedelta(days=2), START, None) == (
        None,
        False,
    )  # none due


def test_a_feed_failing_for_long_is_said_once_a_day() -> None:
    stale = [(f"Feed {n}", f"HTTP 50{n}") for n in range(5)]
    line, once_a_day = feeds_alert(
        poll_report(FeedStatus.OK), stale, timedelta(days=2), START, None
    )
    assert once_a_day and line is not None
    assert line.startswith("5 feeds failing for over 2 days") and line.endswith("; and 2 more")
    later = START + timedelta(hours=23)
    assert feeds_alert(poll_report(FeedStatus.OK), stale, timedelta(days=2), later, START) == (
        None,
        False,
    )
    next_day = START + timedelta(days=1)
    assert feeds_alert(poll_report(FeedStatus.OK), stale, timedelta(days=2), next_day, START)[1]


def test_run_alerts_once_a_day_about_a_feed_failing_for_two_days(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    good = feed_server.add(
        "/good.xml", body=(EXAMPLES / "feeds" / "meridian-wire.xml").read_bytes()
    )
    bad = feed_server.add("/bad.xml", status=500)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"database: {tmp_path / 'news.db'}\nfeeds: [{good}, {bad}]\npolling: {{parse_workers: 0}}\n"
    )
    config = load_config(path, environ={})
    alerts = []
    for hours in (0, 12, 49, 50, 60, 73, 74):
        store = open_store(config.database)
        try:
            report = cron_run(
                config,
                store,
                write=lambda d: None,
                now=START + timedelta(hours=hours),
                all_feeds=True,
            )
        finally:
            store.close()
        alerts.append(report.alert)
    said = [
        hours for hours, alert in zip((0, 12, 49, 50, 60, 73, 74), alerts, strict=True) if alert
    ]
    assert said == [49, 73]
    assert (
        alerts[2] is not None
        and "1 feed failing for over 2 days" in alerts[2]
        and "HTTP 500" in alerts[2]
    )


def test_quiet_run_with_every_feed_failing_says_one_line_and_exits_5(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    closed = "http://127.0.0.1:9/feed.xml"  # the discard port: nothing listens
    path.write_text(
        f"database: {tmp_path / 'news.db'}\nfeeds: [{closed}, {tmp_path / 'gone.xml'}]\n"
    )
    result = CliRunner().invoke(cli, ["--quiet", "--config", str(path), "run"])
    assert result.exit_code == 5, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: all 2 feeds polled failed (is the network down?)")


def test_without_quiet_a_run_with_nothing_due_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    feeds = "".join(f"  - {feed}\n" for feed in sorted((EXAMPLES / "feeds").glob("*.xml")))
    path.write_text(
        f"database: {tmp_path / 'news.db'}\nfeeds:\n{feeds}"
        'digest:\n  at: ["07:00", "18:00"]\n  timezone: UTC\n'
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(path), "run"])
    assert first.exit_code == 0 and first.stdout == ""  # the first run starts the schedule
    assert re.fullmatch(
        r"7 feeds: 7 ok, 0 not modified, 0 failed; 46 new articles in [\d.]+ s; no digest due, "
        r"the next \d{4}-\d\d-\d\d (07|18):00 UTC \(in [\d hmin]+\)\n",
        first.stderr,
    ), first.stderr
    second = runner.invoke(cli, ["--config", str(path), "run"])
    assert second.exit_code == 0 and second.stdout == ""
    assert re.fullmatch(
        r"7 feeds, none due; the next in [\d hmin]+(day)?[\d hmin]*; no digest due, the next "
        r"\d{4}-\d\d-\d\d (07|18):00 UTC \(in [\d hmin]+\)\n",
        second.stderr,
    ), second.stderr
    quiet = runner.invoke(cli, ["--quiet", "--config", str(path), "run"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_a_dry_run_with_nothing_new_says_no_mail_would_be_sent(tmp_path: Path) -> None:
    with SmtpServer() as server:
        feeds = sorted((EXAMPLES / "feeds").glob("*.xml"))
        config = write_config(tmp_path, server.port, feeds)
        runner = CliRunner()
        args = ["--config", str(config.path), "digest"]
        assert runner.invoke(cli, ["--config", str(config.path), "poll"]).exit_code == 0
        assert runner.invoke(cli, args).exit_code == 0 and len(server.received) == 1
        dry = runner.invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0
    assert dry.stdout == "nothing new: no mail would be sent to reader@example.org\n"
    assert "led by nothing new" not in dry.output


def test_printed_dry_run_with_nothing_new_says_so(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(EXAMPLES / "offline.yaml"), "--db", str(tmp_path / "news.db")]
    assert runner.invoke(cli, [*base, "run"]).exit_code == 0
    dry = runner.invoke(cli, [*base, "digest", "--dry-run"])
    assert dry.exit_code == 0 and dry.stdout == "nothing new: nothing would be printed\n"


def test_the_run_line() -> None:
    paris = ZoneInfo("Europe/Paris")
    report = RunReport(
        poll=poll_report(),
        feeds=1340,
        next_feed=START + timedelta(minutes=11, seconds=10),
        digest_due=False,
        next_digest=datetime(2026, 3, 2, 7, 0, tzinfo=paris),
    )
    assert render_run(report, START) == (
        "1,340 feeds, none due; the next in 12 min; "
        "no digest due, the next 2026-03-02 07:00 Europe/Paris (in 6 h)"
    )
    every_run = RunReport(
        poll=poll_report(FeedStatus.OK),
        feeds=1,
        next_feed=None,
        digest_due=True,
        next_digest=None,
        deliveries=(Delivery("reader@example.org", DeliveryOutcome.NOTHING_NEW),),
    )
    assert render_run(every_run, START).endswith(
        "in 0.1 s. Nothing new for reader@example.org: no mail sent"
    )
    assert [span(timedelta(seconds=s)) for s in (0, 59, 3600, 3660, 86400 * 2 + 3600)] == [
        "0 min",
        "1 min",
        "1 h",
        "1 h 1 min",
        "2 days 1 h",
    ]


# --- kill -9 between the steps of a scheduled run ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_in", "mails_after_crash", "mails_in_the_end"),
    [
        ("aggregator.mail:SmtpSender.send", 0, 1),  # after the outbox write, before the send
        ("aggregator.store:Store.mail_attempted", 1, 2),  # after the send, before the mark
    ],
)
def test_kill_9_in_a_due_scheduled_run_loses_nothing_and_sends_no_second_digest(
    tmp_path: Path, kill_in: str, mails_after_crash: int, mails_in_the_end: int
) -> None:
    with SmtpServer() as server:
        feeds = sorted((EXAMPLES / "feeds").glob("*.xml"))
        config = write_config(tmp_path, server.port, feeds)
        # A digest time a little before now, and a database whose last handled time was the
        # day before: this run owes a digest.
        due = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%H:%M")
        assert config.path is not None
        text = config.path.read_text(encoding="utf-8")
        config.path.write_text(text.replace('at: ["07:00", "18:00"]', f'at: ["{due}"]'))
        assert aggregator_process(config.path, "poll").returncode == 0
        slot = latest_slot(datetime.now(UTC), (time.fromisoformat(due),), UTC)
        assert slot is not None
        store = open_store(config.database)
        store.set_meta("digest_slot", (slot - timedelta(days=1)).isoformat())
        store.close()

        crashed = aggregator_process(config.path, "--quiet", "run", kill_in=kill_in)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert len(server.received) == mails_after_crash
        # News after the crash: it waits for the next digest time, not a second digest now.
        extra = tmp_path / "eastbay.xml"
        extra.write_text(EASTBAY, encoding="utf-8")
        text = config.path.read_text(encoding="utf-8")
        config.path.write_text(text.replace("feeds:\n", f"feeds:\n  - {extra}\n", 1))
        for _ in range(2):  # the next runs deliver it, and then nothing more
            after = aggregator_process(config.path, "--quiet", "run")
            assert after.returncode == 0 and after.stderr == "", after.stderr
        assert len(server.received) == mails_in_the_end
        assert len({m.message["Message-ID"] for m in server.received}) == 1
        assert "5 stories" in server.received[-1].message["Subject"]


# --- no leftovers ------------------------------------------------------------------------------


def test_stories_past_the_limit_come_in_the_compact_list_and_never_in_a_mail_of_their_own(
    tmp_path: Path,
) -> None:
    with SmtpServer() as server:
        feeds = sorted((EXAMPLES / "feeds").glob("*.xml"))
        config = write_config(tmp_path, server.port, feeds)
        assert config.path is not None
        text = config.path.read_text(encoding="utf-8")
        # No schedule, and two stories in full: the other three go in the compact list.
        text = text.replace(
            '  at: ["07:00", "18:00"]\n  timezone: UTC\n  limit: 3\n', "  limit: 2\n"
        )
        config.path.write_text(text, encoding="utf-8")
        runner = CliRunner()
        first = runner.invoke(cli, ["--config", str(config.path), "run"])
        assert first.exit_code == 0, first.output
        [mail] = server.received
        shown = str(mail.message["X-Aggregator-Stories"]).split()
        assert len(shown) == 5  # every story counts as shown, full or compact
        body = mail.message.get_body(("plain",)).get_content()
        assert "aggregator digest: 5 stories" in body and "3 more stories:" in body
        assert body.count("Terms: ") == 2
        # A minute later nothing is due and nothing is new: no mail of leftovers, one line.
        second = runner.invoke(cli, ["--config", str(config.path), "run"])
        assert second.exit_code == 0 and len(server.received) == 1
        assert second.stdout == "" and len(second.stderr.splitlines()) == 1
        assert "Nothing new for reader@example.org: no mail sent" in second.stderr
