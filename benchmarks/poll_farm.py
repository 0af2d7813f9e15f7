"""Polling speed on a loopback feed farm: aggregator against reader, in the same run.

The farm (benchmarks/farm.py) serves the dev story data as 1,241 feeds, one per outlet, each on
its own loopback address, with a latency on every request and ETags. Each run uses a fresh
database and a fresh process:

- aggregator: `aggregator poll --all` (the first poll: fetch, parse, store, cluster), then
  the same again (a forced re-poll of unchanged feeds);
- reader 3.26: `update_feeds(workers=16)` on a fresh database (its feeds added beforehand,
  not timed); we report both the call alone and the whole process.

It prints the median of the runs and the ratios, then the CPU of parsing and ingesting the
farm's bytes against feedparser's own parse time on the same bytes.

    python benchmarks/poll_farm.py --runs 5 --latency 0.05 --reader-python /path/to/python

reader lives in its own environment (`python -m venv r && r/bin/pip install reader==3.26`);
without --reader-python the current interpreter is tried, and reader is skipped if absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import farm  # noqa: E402

READER_SCRIPT = """
import json, sys, time
from reader import make_reader
urls = open(sys.argv[2]).read().split()
reader = make_reader(sys.argv[1])
for url in urls:
    reader.add_feed(url, exist_ok=True)
started = time.perf_counter()
reader.update_feeds(workers=16)
print(json.dumps({"update": time.perf_counter() - started,
                  "entries": reader.get_entry_counts().total}))
"""
SUMMARY = re.compile(r"([\d,]+) feeds: ([\d,]+) ok, ([\d,]+) not modified, ([\d,]+) failed")


def start_farm(latency: float, workdir: Path) -> tuple[subprocess.Popen[str], int, Path]:
    urls = workdir / "urls.txt"
    proc, port = farm.spawn("--latency", str(latency), "--urls", str(urls))
    return proc, port, urls


def farm_stats(port: int, reset: bool = False) -> dict[str, int]:
    url = f"http://127.0.0.1:{port}/{'_reset' if reset else '_stats'}"
    with urllib.request.urlopen(url) as response:  # loopback only
        body = response.read()
    return json.loads(body) if body else {}


def aggregator_poll(config: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE.parent / "cli.py"), "--config", str(config), "poll", "--all"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - started
    match = SUMMARY.search(done.stderr)
    return seconds, match.group(0) if match else done.stderr.strip()[-200:]


def run_aggregator(urls: Path, port: int, runs: int, concurrency: int | None) -> dict[str, object]:
    env = dict(os.environ)
    if concurrency:
        env["AGGREGATOR_POLLING_CONCURRENCY"] = str(concurrency)
    first, again, conditional, summaries = [], [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            feeds = "\n".join(f"  - {u}" for u in urls.read_text().split())
            config.write_text(f"database: {tmp}/agg.db\nfeeds:\n{feeds}\n")
            seconds, _ = aggregator_poll(config, env)
            first.append(seconds)
            farm_stats(port, reset=True)
            seconds, summary = aggregator_poll(config, env)
            again.append(seconds)
            stats = farm_stats(port)
            conditional.append(stats["conditional"] / max(stats["requests"], 1))
            summaries.append(summary)
    return {
        "first": statistics.median(first),
        "first_all": first,
        "repoll": statistics.median(again),
        "repoll_all": again,
        "conditional": min(conditional),
        "repoll_summary": summaries[-1],
    }


def run_reader(python: str, urls: Path, runs: int) -> dict[str, object] | None:
    try:
        check = subprocess.run([python, "-c", "import reader"], capture_output=True)
    except OSError:
        check = None
    if check is None or check.returncode != 0:
        print(f"reader is not importable by {python}: skipped (see --reader-python)")
        return None
    update, whole = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            done = subprocess.run(
                [python, "-c", READER_SCRIPT, f"{tmp}/reader.sqlite", str(urls)],
                capture_output=True,
                text=True,
                check=True,
            )
            whole.append(time.perf_counter() - started)
            update.append(json.loads(done.stdout.strip().splitlines()[-1])["update"])
    return {
        "update": statistics.median(update),
        "update_all": update,
        "process": statistics.median(whole),
    }


def cpu_of_parse_and_ingest(bodies: list[tuple[str, bytes]], runs: int) -> tuple[float, float]:
    """Median CPU seconds on the same bytes: feedparser alone, and our parse + normalize +
    dedupe + store (what a poll does with a body, without the network and clustering).

    Stored as the poll stores: a transaction per batch of feeds (20, about the median batch the
    pipeline commits on the farm), a savepoint per feed.
    """
    import io

    import feedparser

    from aggregator.config import DedupeConfig, PollingConfig
    from aggregator.models import FeedConfig, FetchResult
    from aggregator.pipeline import store_document
    from aggregator.store import open_store
    from aggregator.workers import read_document

    headers = {"content-type": "application/rss+xml"}
    ours, theirs = [], []
    for _ in range(runs):
        started = time.process_time()
        for _, body in bodies:
            feedparser.parse(io.BytesIO(body), response_headers=headers)
        theirs.append(time.process_time() - started)
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Path(tmp) / "cpu.db")
            now = datetime.now(UTC)
            store.sync_feeds([FeedConfig(url=url) for url, _ in bodies], now)
            states = store.feeds()
            polling, rng = PollingConfig(), random.Random(1)
            pairs = list(zip(states, bodies, strict=True))
            started = time.process_time()
            for i in range(0, len(pairs), 20):
                with store.transaction():
                    for state, (_, body) in pairs[i : i + 20]:
                        result = FetchResult(state.url, state.url, 200, body, headers, None, None)
                        document = read_document(state.url, body, headers, now)
                        with store.transaction():
                            store_document(
                                store,
                                state,
                                result,
                                document,
                                body_hash=hashlib.sha256(body).hexdigest(),
                                polling=polling,
                                dedupe=DedupeConfig(),
                                now=now,
                                rng=rng,
                            )
            ours.append(time.process_time() - started)
            store.close()
    return statistics.median(theirs), statistics.median(ours)


def real_feed_bodies() -> list[tuple[str, bytes]]:
    """The RSS, Atom and RDF files of ../shared/corpus/real-feeds (JSON Feed is not
    feedparser's, so it is left out of a comparison with feedparser)."""
    folder = HERE.parent.parent / "shared/corpus/real-feeds"
    files = sorted(p for p in folder.glob("*") if p.suffix in {".rss", ".atom", ".xml", ".rdf"})
    return [(f"https://real.example/{p.name}", p.read_bytes()) for p in files]


def main() -> None:
    ap = argparse.ArgumentParser(description="aggregator against reader on a loopback farm")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    ap.add_argument("--reader-python", default=sys.executable)
    ap.add_argument("--concurrency", type=int, help="polling.concurrency for aggregator")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-reader", action="store_true")
    args = ap.parse_args()
    if not farm.DATA.is_file():
        sys.exit(f"no story data at {farm.DATA}: this benchmark replays ../shared")
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, urls = start_farm(args.latency, Path(tmp))
        try:
            n = len(urls.read_text().split())
            floor = n * args.latency / (args.concurrency or 32)
            print(f"farm: {n:,} feeds, {args.latency * 1000:.0f} ms a request, {args.runs} runs")
            ours = run_aggregator(urls, port, args.runs, args.concurrency)
            theirs = None if args.skip_reader else run_reader(args.reader_python, urls, args.runs)
        finally:
            proc.kill()
            proc.wait()
    print(
        f"aggregator first poll (whole process, incl. clustering): {ours['first']:.2f} s"
        f"  runs {[round(x, 2) for x in ours['first_all']]}  (latency floor {floor:.2f} s)"
    )
    print(
        f"aggregator forced re-poll: {ours['repoll']:.2f} s"
        f"  runs {[round(x, 2) for x in ours['repoll_all']]}"
        f"  conditional requests {ours['conditional']:.1%}  [{ours['repoll_summary']}]"
    )
    if theirs is not None:
        print(
            f"reader update_feeds(workers=16): {theirs['update']:.2f} s"
            f"  runs {[round(x, 2) for x in theirs['update_all']]}"
            f"  (whole process {theirs['process']:.2f} s)"
        )
        print(
            f"ratio, reader's update_feeds call / our whole first poll: "
            f"{theirs['update'] / ours['first']:.2f}x;"
            f" process against process: {theirs['process'] / ours['first']:.2f}x"
        )
    if not args.skip_cpu:
        farm_bodies = [(f"http://{f.host}/feed", f.body) for f in farm.build_feeds()]
        for name, bodies in (("the farm's", farm_bodies), ("real-feeds'", real_feed_bodies())):
            feedparser_cpu, our_cpu = cpu_of_parse_and_ingest(bodies, args.runs)
            print(
                f"CPU on {name} bytes ({len(bodies):,} documents): feedparser alone"
                f" {feedparser_cpu:.3f} s; our parse + normalize + dedupe + store"
                f" {our_cpu:.3f} s ({our_cpu / feedparser_cpu:.2f}x)"
            )


if __name__ == "__main__":
    main()
