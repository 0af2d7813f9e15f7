"""What story summaries cost a poll: one poll of the whole dev stream into a new database.

The dev story data (../shared/data/uci-news-stories-dev.csv) becomes one local RSS file per
HOSTNAME, and one `poll` stores and clusters it all (parse_workers 0, in this process). The
time spent choosing summaries (reading the stories' articles, ``Store.summary_sources``, and
``aggregator.summary.story_summaries``) is measured inside that poll and set against the whole
poll's time, per story whose summary was worked out.

The dev data has headlines only, so its stories get no summary and the cost is the reading
alone. The second case gives every item a description as long as real feeds' are: the summary
of a real-feeds item (../shared/corpus/real-feeds), in turn, after a sentence made of the
item's own headline words. That text says nothing true about the story; it is there only to make
summary choosing do its full work on realistic lengths.

    python benchmarks/summary_cost.py [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aggregator.stories as stories  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.normalize import normalize_entry  # noqa: E402
from aggregator.parse import parse_feed  # noqa: E402
from aggregator.pipeline import poll  # noqa: E402
from aggregator.store import Store, open_store  # noqa: E402
from aggregator.summary import _sentences  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "uci-news-stories-dev.csv"
REAL = ROOT.parent / "shared" / "corpus" / "real-feeds"


def real_summaries() -> list[str]:
    found = []
    for path in sorted(REAL.iterdir()):
        try:
            parsed = parse_feed(path.as_uri(), path.read_bytes())
        except Exception:
            continue
        for entry in parsed.entries:
            article = normalize_entry(
                entry, feed_url=path.as_uri(), feed_link=None, now=datetime.now(UTC)
            )
            if article is not None and len(article.summary) > 200:
                found.append(article.summary)
    return found


def write_feeds(directory: Path, rows: list[dict[str, str]], texts: list[str]) -> list[Path]:
    by_host: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
    for n, row in enumerate(rows):
        by_host[row["HOSTNAME"]].append((n, row))
    paths = []
    for host, items in sorted(by_host.items()):
        entries = []
        for n, r in items:
            when = datetime.fromtimestamp(int(r["TIMESTAMP"]) / 1000, UTC)
            description = ""
            if texts:
                text = f"{r['TITLE'].rstrip('.!?')}, it says. {texts[n % len(texts)]}"
                description = f"<description>{escape(text)}</description>"
            entries.append(
                f"<item><title>{escape(r['TITLE'])}</title><link>{escape(r['URL'])}</link>"
                f"<guid isPermaLink='false'>uci-{r['ID']}</guid>"
                f"<pubDate>{format_datetime(when)}</pubDate>{description}</item>"
            )
        path = directory / f"{host}.xml"
        path.write_text(
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{escape(items[0][1]['PUBLISHER'])}</title><link>http://{host}/</link>"
            f"<description>dev</description>{''.join(entries)}</channel></rss>",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def one_poll(work: Path, feeds: list[Path], now: datetime) -> dict[str, Any]:
    config_path = work / "config.yaml"
    database = work / "news.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    config_path.write_text(
        f"database: {database}\nfeeds:\n"
        + "".join(f"  - {p}\n" for p in feeds)
        + "polling:\n  parse_workers: 0\n",
        encoding="utf-8",
    )
    config = load_config(config_path, environ={})
    spent = [0.0]
    counted = [0, 0]  # stories, of which with a summary
    read, choose = Store.summary_sources, stories.story_summaries

    def timed_read(self: Store, ids: Any) -> Any:
        started = time.perf_counter()
        try:
            return read(self, ids)
        finally:
            spent[0] += time.perf_counter() - started

    def timed_choose(found: Any) -> Any:
        started = time.perf_counter()
        try:
            chosen = choose(found)
        finally:
            spent[0] += time.perf_counter() - started
        counted[0] += len(chosen)
        counted[1] += sum(1 for summary in chosen.values() if summary)
        return chosen

    Store.summary_sources = timed_read  # type: ignore[method-assign]
    stories.story_summaries = timed_choose
    _sentences.cache_clear()  # each poll starts cold, as a cron run's process does
    store = open_store(database)
    try:
        started = time.perf_counter()
        report = poll(config, store, all_feeds=True, now=now)
        took = time.perf_counter() - started
    finally:
        store.close()
        Store.summary_sources = read  # type: ignore[method-assign]
        stories.story_summaries = choose
    return {
        "poll": took,
        "summaries": spent[0],
        "stories": counted[0],
        "with_summary": counted[1],
        "articles": report.new_articles,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not DATA.exists() or not REAL.exists():
        sys.exit("../shared (the dev data and the real-feeds corpus) is absent")
    with DATA.open(encoding="utf-8", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["TIMESTAMP"]))
    now = datetime.fromtimestamp(int(rows[-1]["TIMESTAMP"]) / 1000, UTC) + timedelta(minutes=5)
    texts = real_summaries()
    for name, borrowed in (("headlines only (the dev data)", []), ("with descriptions", texts)):
        work = Path(tempfile.mkdtemp(prefix="summary-cost-"))
        (work / "feeds").mkdir()
        feeds = write_feeds(work / "feeds", rows, borrowed)
        results = [one_poll(work, feeds, now) for _ in range(args.runs)]
        poll_s = statistics.median(r["poll"] for r in results)
        summary_s = statistics.median(r["summaries"] for r in results)
        last = results[-1]
        per_story = summary_s / max(1, last["stories"]) * 1000
        print(
            f"{name}: {len(feeds):,} feeds, {last['articles']:,} articles, "
            f"{last['stories']:,} stories worked out ({last['with_summary']:,} with a summary)\n"
            f"  poll {poll_s:.2f} s (median of {args.runs}); summaries {summary_s:.3f} s = "
            f"{summary_s / poll_s:.1%} of the poll, {per_story:.3f} ms a story"
        )


if __name__ == "__main__":
    main()
