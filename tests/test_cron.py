"""Cron, replayed with an injected clock: `run` every 30 minutes for three simulated days with
``digest.at: ["07:00", "18:00"]``, mailing to a real aiosmtpd server on loopback.

The news is made up here: stories of one to four outlets, their articles an hour or two apart,
some growing across a digest time. Each run first rewrites the five outlets' feeds (local
files) to hold what was published by then.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from aggregator.config import Config, load_config
from aggregator.cron import cron_run
from aggregator.digest import latest_slot
from aggregator.errors import DeliveryError
from aggregator.store import open_store

from .smtp import SmtpServer

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=30)
DAYS = 3
OUTLETS = ["Northgate Herald", "Meridian Wire", "Pacific Ledger", "Alpine Courier", "Tech Quarter"]
SLOTS = (time(7, 0), time(18, 0))
SYLLABLES = "ka lo mi ru ven tor sal qui bex dra fen gol hur jin zep wyl orn pax".split()


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
