"""`aggregator stories` on a database of 100,000 articles: the time of the whole command.

The database is made here, directly in SQLite through the store's own schema: 300 feeds and
100,000 articles over 30 days, in stories of 1 to 12 articles close in time, as clustering
leaves them (no clustering happens at read time, so none is needed to measure it). Each
command runs as a fresh process, --runs times, interleaved with `python -c "import click"`
(the peer: a Python that starts and loads click alone); medians are printed with their ratio
to it (the goal: `stories` within 4x, `--help` within 1.5x). Then the same query in this
process, which leaves out Python's start and the imports.

    python benchmarks/stories_speed.py [--articles 100000] [--runs 9] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator.listing import ranked_stories  # noqa: E402
from aggregator.store import open_store, ts  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
WORDS = [
    "council",
    "harbour",
    "budget",
    "vote",
    "minister",
    "storm",
    "flood",
    "election",
    "court",
    "ruling",
    "market",
    "shares",
    "strike",
    "union",
    "talks",
    "ceasefire",
    "summit",
    "bank",
    "rates",
    "inflation",
    "team",
    "final",
    "season",
    "record",
]


def build(path: Path, articles: int, rng: random.Random) -> None:
    store = open_store(path)
    db = store.db.conn
    span = timedelta(days=30)
    with store.transaction():
        db.executemany(
            "INSERT INTO feeds (id, url, title, added_at) VALUES (?, ?, ?, ?)",
            [
                (f, f"https://feed{f}.example/rss", f"Outlet {f}", ts(NOW - span))
                for f in range(1, 301)
            ],
        )
        article_id, story_id = 0, 0
        while article_id < articles:
            story_id += 1
            size = min(rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8, 12]), articles - article_id)
            start = NOW - span * rng.random()
            title = " ".join(rng.sample(WORDS, 6)).capitalize()
            rows, feeds = [], set()
            for n in range(size):
                article_id += 1
                when = ts(min(start + timedelta(minutes=20 * n), NOW))
                feed = rng.randrange(1, 301)
                feeds.add(feed)
                rows.append((article_id, feed, f"{title} ({n})", when))
            db.executemany(
                """INSERT INTO articles (id, feed_id, guid, url, title, summary, published,
                                         first_seen, content_hash)
                   VALUES (?, ?, ?, ?, ?, 'A summary of the event in a few words.', ?, ?, ?)""",
                [
                    (a, f, f"g{a}", f"https://feed{f}.example/{a}", t, w, w, f"h{a}")
                    for a, f, t, w in rows
                ],
            )
            db.executemany(
                "INSERT INTO items (feed_id, article_id, item_key, url, first_seen) "
                "VALUES (?, ?, ?, ?, ?)",
                [(f, a, f"guid:g{a}", f"https://feed{f}.example/{a}", w) for a, f, _, w in rows],
            )
            db.execute(
                """INSERT INTO stories (id, title, terms, size, source_count, first_seen,
                                        last_seen, created_at, updated_at, seen_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    story_id,
                    title,
                    json.dumps(title.lower().split()[:4]),
                    size,
                    len(feeds),
                    rows[0][3],
                    rows[-1][3],
                    rows[0][3],
                    rows[-1][3],
                    rows[-1][3],  # seen_at: each item is first seen as it is published here
                ],
            )
            db.executemany(
                "INSERT INTO story_articles (article_id, story_id, added_at) VALUES (?, ?, ?)",
                [(a, story_id, w) for a, _, _, w in rows],
            )
    store.close()


def timed(command: list[str], runs: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="build the database here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="stories_speed-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "agg.db"
    config = folder / "config.yaml"
    config.write_text(f"database: {database}\nfeeds: []\n", encoding="utf-8")
    if not database.exists():
        started = time.perf_counter()
        build(database, args.articles, random.Random(7))
        print(f"built {args.articles:,} articles in {time.perf_counter() - started:.1f} s")
    script = shutil.which("aggregator") or str(Path(sys.executable).parent / "aggregator")
    base = [script, "--config", str(config)]
    commands = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "aggregator --help": [script, "--help"],
        "stories": [*base, "stories"],
        "stories --json": [*base, "stories", "--json"],
        "stories --since 30d": [*base, "stories", "--since", "30d"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    sizes: dict[str, int] = {}
    for _ in range(args.runs):  # interleaved, so a busy moment falls on every command alike
        for name, command in commands.items():
            median, out = timed(command, 1)
            times[name].append(median)
            sizes[name] = len(out)
    peer = statistics.median(times['python -c "import click"'])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<26} {median * 1000:7.0f} ms  {median / peer:5.2f}x import click  "
            f"(median of {args.runs}; {sizes[name]:,} bytes out)"
        )
    # The query and ranking alone, without the start of a process and its imports.
    store = open_store(database)
    for name, window in {"24h": timedelta(hours=24), "30d": timedelta(days=30)}.items():
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            ranked_stories(store, since=datetime.now(UTC) - window, min_size=2, limit=20)
            times.append(time.perf_counter() - started)
        label = f"ranked_stories {name}"
        print(f"{label:<22} {statistics.median(times) * 1000:7.1f} ms  (in process)")
    store.close()
    mute_cost(database)


def mute_cost(database: Path) -> None:
    """A new mute rule over the whole database (on a copy), then the check each command makes."""
    from aggregator.config import Config, MuteConfig
    from aggregator.stories import apply_mute

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "agg.db"
        shutil.copy(database, copy)
        store = open_store(copy)
        config = Config(database=copy, mute=MuteConfig(terms=("ceasefire",)))
        started = time.perf_counter()
        changed = apply_mute(store, config, now=datetime.now(UTC))
        print(
            f"{'mute: ceasefire':<22} {time.perf_counter() - started:7.2f} s   "
            f"({changed:,} stories changed)"
        )
        started = time.perf_counter()
        apply_mute(store, config, now=datetime.now(UTC))
        print(f"{'mute: unchanged rules':<22} {(time.perf_counter() - started) * 1000:7.1f} ms")
        store.close()


if __name__ == "__main__":
    main()
