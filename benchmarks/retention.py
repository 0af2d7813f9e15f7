"""Half a year of daily polls: does the database stay bounded in size and time with retention?

A 200-feed reader is simulated for ``--days`` days (180) at ``--items-per-day`` items a day
(4,000), from the dev story stream (../shared/data/uci-news-stories-dev*.csv, the re-timed
copies made by ../shared/tools/retime.py), repeated with fresh guids and links each time round.
Each headline always goes to the same feed (by its row id), so a repeat is never taken for a
copy from another outlet. Feeds are JSON Feed files on disk (one process, no network), and
differ in how long they carry an item, as real ones do:

- news feeds (70 %): everything of the last two days;
- magazine feeds (20 %): the last two days, and the first three items of each day for 14 to 35
  days (items that stay for weeks);
- archive feeds (10 %, blogs and podcasts): the last two days, and the first item of each day
  for 150 days, far past ``keep``: what could come back after a prune.

The feeds have a past when the reader subscribes (their archives are full at the first poll),
so what a poll reads is the same from the first day to the last.

Every simulated day ends with `poll` (the library call the command makes, under an injected
clock) on two databases fed the same files: one with ``database.keep: 90d`` (``--keep``), which
prunes once a day inside the poll, and one with ``keep: all``. At each checkpoint (days 30, 90,
120 and 180) it reports, for each: the database size (file and WAL), the article count, the
wall time of a poll (the median of the last seven days' polls, each of which prunes), and of
`stories`, `search` (four words) and `digest --dry-run` (their library calls, medians of
three), and for the pruned one the longest write-lock a prune held since the
last checkpoint, and the resurrected items: stored again with a guid stored before (must be 0).

    python benchmarks/retention.py                       # the full run (about 40 minutes here)
    python benchmarks/retention.py --days 20 --items-per-day 1000 --checkpoints 5,10,15,20
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import Config, load_config  # noqa: E402
from aggregator.delivery import build_digest  # noqa: E402
from aggregator.listing import ranked_stories  # noqa: E402
from aggregator.pipeline import poll  # noqa: E402
from aggregator.store import Store, open_store  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NEWS_DAYS = 2
SEARCHES = ("market", "apple", "ukraine", "bank")
POLL_DAYS = 7  # a poll's time is the median of the last week's (one poll a day)


def stream() -> Iterator[dict[str, str]]:
    """The dev stream's rows, re-timed copies first, round and round."""
    files = sorted(DATA.glob("uci-news-stories-dev-retimed-*.csv")) or sorted(
        DATA.glob("uci-news-stories-dev*.csv")
    )
    if not files:
        sys.exit(f"no dev stream under {DATA}: the shared data sits beside the project")
    tables = [list(csv.DictReader(f.open(newline="", encoding="utf-8"))) for f in files]
    while True:
        for rows in tables:
            yield from rows


@dataclasses.dataclass
class Feed:
    index: int
    kind: str  # news, magazine, archive
    stay: int  # days its older items stay (magazine, archive)
    keep_per_day: int  # of each older day, how many items stay
    days: dict[int, list[dict[str, str]]] = dataclasses.field(default_factory=dict)

    def trim(self, today: int) -> None:
        """Forget the days whose items have all left the feed."""
        for day in [d for d in self.days if today - d >= max(self.stay, NEWS_DAYS)]:
            del self.days[day]

    def document(self, today: int) -> bytes:
        items: list[dict[str, str]] = []
        for day in sorted(self.days, reverse=True):
            age = today - day
            if age < NEWS_DAYS:
                items += reversed(self.days[day])
            elif age < self.stay:
                items += self.days[day][: self.keep_per_day]
        return json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": f"Outlet {self.index} ({self.kind})",
                "home_page_url": f"https://outlet{self.index}.example/",
                "items": items,
            }
        ).encode()


def make_feeds(count: int) -> list[Feed]:
    feeds = []
    for i in range(count):
        share = i / count
        if share < 0.1:
            feeds.append(Feed(i, "archive", 150, 1))
        elif share < 0.3:
            feeds.append(Feed(i, "magazine", 14 + (i * 7) % 22, 3))
        else:
            feeds.append(Feed(i, "news", 0, 0))
    return feeds


def publish(feeds: list[Feed], rows: Iterator[dict[str, str]], day: int, per_day: int) -> None:
    """The day's items into their feeds, spread over the day."""
    start = START + day * DAY
    for k in range(per_day):
        row = next(rows)
        serial = f"{day}-{k}"
        feed = feeds[int(row["ID"]) * 7919 % len(feeds)]
        published = start + timedelta(seconds=k * 86400 / per_day)
        feed.days.setdefault(day, []).append(
            {
                "id": f"{row['ID']}-{serial}",
                "url": f"https://{row['HOSTNAME']}/{serial}/{row['ID']}",
                "title": row["TITLE"],
                "date_published": published.isoformat(),
            }
        )


def median_time(call: Callable[[], Any], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def size_of(store: Store) -> int:
    return sum(
        p.stat().st_size
        for p in (store.path, store.path.with_name(store.path.name + "-wal"))
        if p.exists()
    )


@dataclasses.dataclass
class Run:
    """One database through the days: its config, and what was seen of it."""

    name: str
    config: Config
    store: Store
    last_id: int = 0
    resurrected: int = 0
    longest_lock: float = 0.0
    poll_seconds: list[float] = dataclasses.field(default_factory=list)
    prune_seconds: list[float] = dataclasses.field(default_factory=list)
    pruned: int = 0
    guids: set[str] = dataclasses.field(default_factory=set)

    def day(self, now: datetime) -> None:
        started = time.perf_counter()
        report = poll(self.config, self.store, now=now, all_feeds=True)
        self.poll_seconds.append(time.perf_counter() - started)
        self.prune_seconds.append(report.pruned.seconds if report.pruned else 0.0)
        if report.pruned is not None:
            self.longest_lock = max(self.longest_lock, report.pruned.longest_lock)
            self.pruned += report.pruned.articles
        rows = self.store.db.execute(
            "SELECT id, guid FROM articles WHERE id > ? ORDER BY id", [self.last_id]
        ).fetchall()
        for id, guid in rows:
            if guid in self.guids:
                self.resurrected += 1
            self.guids.add(guid)
            self.last_id = id

    def measure(self, now: datetime) -> dict[str, float]:
        store, config = self.store, self.config
        figures = {
            "size_mb": size_of(store) / 1e6,
            "articles": store.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0],
            "stories": store.db.execute("SELECT COUNT(*) FROM stories").fetchone()[0],
            "largest": store.db.execute("SELECT MAX(size) FROM stories").fetchone()[0] or 0,
            "poll_s": statistics.median(self.poll_seconds[-POLL_DAYS:]),
            # Of which the day's prune (from day keep + 1): a poll's own work is the rest.
            "prune_s": statistics.median(self.prune_seconds[-POLL_DAYS:]),
            "unpruned_poll_s": statistics.median(
                p - q
                for p, q in zip(
                    self.poll_seconds[-POLL_DAYS:], self.prune_seconds[-POLL_DAYS:], strict=True
                )
            ),
            "stories_s": median_time(
                lambda: ranked_stories(
                    store,
                    since=now - timedelta(hours=24),
                    min_size=2,
                    limit=20,
                    now=now,
                    recent=config.clustering.quiet_after,
                    with_articles=False,  # as `aggregator stories` reads them for its table
                )
            ),
            "search_s": median_time(lambda: [store.search(word, limit=50) for word in SEARCHES])
            / len(SEARCHES),
            "digest_s": median_time(lambda: build_digest(store, config, now=now)),
            "lock_s": self.longest_lock,
            "resurrected": self.resurrected,
        }
        self.longest_lock = 0.0
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--items-per-day", type=int, default=4000)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--keep", type=int, default=90, help="days (database.keep)")
    parser.add_argument("--checkpoints", default="30,90,120,180")
    parser.add_argument("--no-compare", action="store_true", help="skip the keep: all database")
    parser.add_argument("--dir", type=Path, help="work here instead of a temporary folder")
    args = parser.parse_args()
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.days})
    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        feeds = make_feeds(args.feeds)
        paths = [work / "feeds" / f"outlet{f.index}.json" for f in feeds]
        paths[0].parent.mkdir(exist_ok=True)
        for path in paths:
            path.write_bytes(b"{}")
        config_path = work / "config.yaml"
        config_path.write_text(
            "database: kept.db\npolling:\n  parse_workers: 0\nfeeds:\n"
            + "".join(f"  - {p}\n" for p in paths),
            encoding="utf-8",
        )
        base = load_config(config_path, environ={})
        runs = [
            Run(
                f"keep {args.keep}d",
                dataclasses.replace(
                    base, database=work / "kept.db", keep=timedelta(days=args.keep)
                ),
                open_store(work / "kept.db"),
            )
        ]
        if not args.no_compare:
            all_config = dataclasses.replace(base, database=work / "all.db", keep=None)
            runs.append(Run("keep all", all_config, open_store(work / "all.db")))
        rows = stream()
        # The feeds have a past when the reader subscribes: their archives are full from the
        # first poll, so what a poll reads is the same every day.
        for day in range(-max(f.stay for f in feeds), 0):
            publish(feeds, rows, day, args.items_per_day)
            for feed in feeds:
                feed.trim(day)
        results: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
        started = time.perf_counter()
        for day in range(args.days):
            publish(feeds, rows, day, args.items_per_day)
            for feed, path in zip(feeds, paths, strict=True):
                feed.trim(day)
                path.write_bytes(feed.document(day))
            now = START + (day + 1) * DAY
            for run in runs:
                run.day(now)
            number = day + 1
            if number in checkpoints:
                for run in runs:
                    results[run.name][number] = run.measure(now)
                print(
                    f"day {number}: "
                    + "; ".join(
                        f"{name}: {r[number]['size_mb']:.0f} MB, {r[number]['articles']:,} "
                        f"articles, poll {r[number]['poll_s']:.2f} s"
                        for name, r in results.items()
                        if number in r
                    )
                    + f"  ({time.perf_counter() - started:.0f} s so far)",
                    file=sys.stderr,
                    flush=True,
                )
        report(results, runs, checkpoints, args)


def report(
    results: dict[str, dict[int, dict[str, float]]],
    runs: list[Run],
    checkpoints: list[int],
    args: argparse.Namespace,
) -> None:
    columns = (
        ("size_mb", "size MB", "{:.1f}"),
        ("articles", "articles", "{:,}"),
        ("stories", "stories", "{:,}"),
        ("largest", "largest story", "{:,}"),
        ("poll_s", "poll s", "{:.2f}"),
        ("prune_s", "of it prune s", "{:.2f}"),
        ("unpruned_poll_s", "poll-prune s", "{:.2f}"),
        ("stories_s", "stories s", "{:.3f}"),
        ("search_s", "search s", "{:.4f}"),
        ("digest_s", "digest s", "{:.3f}"),
        ("lock_s", "prune lock s", "{:.3f}"),
        ("resurrected", "resurrected", "{:,}"),
    )
    print(
        f"{args.days} days, {args.items_per_day:,} items a day, {args.feeds} feeds, "
        f"keep {args.keep}d"
    )
    for name, by_day in results.items():
        print(f"\n{name}")
        print("day  " + "  ".join(f"{title:>12}" for _, title, _ in columns))
        for day in checkpoints:
            figures = by_day[day]
            print(
                f"{day:>3}  "
                + "  ".join(f"{fmt.format(figures[key]):>12}" for key, _, fmt in columns)
            )
    kept = results[runs[0].name]
    steady = [d for d in checkpoints if d >= args.keep]
    if len(steady) >= 2:
        print(f"\nfrom day {steady[0]} on (keep {args.keep}d), spread (max/min - 1):")
        for key, title, _ in columns[:10]:
            values = [kept[d][key] for d in steady]
            if min(values) > 0:  # no prune yet on the first of them
                print(f"  {title:<10} {max(values) / min(values) - 1:+.1%}")
    print(f"\nlongest prune lock over the run: {max(kept[d]['lock_s'] for d in checkpoints):.3f} s")
    print(f"resurrected items: {runs[0].resurrected}; pruned in all: {runs[0].pruned:,}")
    if len(runs) > 1:
        last = checkpoints[-1]
        print(f"\nday {last}, keep {args.keep}d against keep all:")
        for key, title, _ in columns[:10]:
            a, b = results[runs[0].name][last][key], results[runs[1].name][last][key]
            if b:  # keep all never prunes
                print(f"  {title:<10} {a:>12.3f} {b:>12.3f}  ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
