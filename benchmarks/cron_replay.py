"""Cron, replayed: is every story mailed, never twice unless it grew, through faults?

The dev story data (../shared/data/uci-news-stories-dev.csv) is cut into ``--runs`` equal slices
of its time line. Before each run, every outlet's feed (a local RSS file, one per HOSTNAME) is
rewritten to hold its items up to the end of that slice, the newest 60, so the stream arrives
as it would over a day of cron runs. Then the real ``aggregator --quiet run --all`` runs in its
own process, mailing to an aiosmtpd server on loopback, with ``digest.limit: 0`` (every
story that is new or has grown) so the check can be exact.

Faults, on chosen runs (``--faults`` off for a clean replay):
- the server answers 451 to DATA for two runs in a row, then 554 for one (the digest waits in
  the outbox; nothing new queues behind it);
- kill -9 after the digest is in the outbox and before the send;
- kill -9 after the send and before it is marked sent (the one duplicate allowed);
- a second run started while the first holds the lock.

What is checked, from the mails the server received (header ``X-Aggregator-Stories``,
``id:sources`` of each story) and the database at the end:
- lost: a story of two articles or sources or more (min_size) whose sources now exceed the
  most any mail showed; it must be 0;
- repeated: a story mailed again with no more sources than before, counting a resent message
  (same Message-ID) apart; must be 0;
- duplicates: messages received twice (same Message-ID): at most one per kill after the send;
- the time of each run, and the digest's share of it.

    python benchmarks/cron_replay.py --runs 24
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.processes import aggregator_process  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "uci-news-stories-dev.csv"


def read_items(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=lambda r: int(r["TIMESTAMP"]))


def write_feeds(directory: Path, items: list[dict[str, str]], upto: int) -> list[Path]:
    by_host: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in items:
        by_host[row["HOSTNAME"]].append(row)
    paths = []
    for host, rows in sorted(by_host.items()):
        path = directory / f"{host}.xml"
        shown = [r for r in rows if int(r["TIMESTAMP"]) <= upto][-60:]
        entries = "".join(
            f"<item><title>{escape(r['TITLE'])}</title><link>{escape(r['URL'])}</link>"
            f"<guid isPermaLink='false'>uci-{r['ID']}</guid><pubDate>"
            f"{format_datetime(datetime.fromtimestamp(int(r['TIMESTAMP']) / 1000, UTC))}"
            "</pubDate></item>"
            for r in reversed(shown)
        )
        path.write_text(
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{escape(rows[0]['PUBLISHER'])}</title><link>http://{host}/</link>"
            f"<description>replay</description>{entries}</channel></rss>",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def run(config: Path, *args: str, kill_in: str | None = None) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = aggregator_process(config, *args, kill_in=kill_in, timeout=600)
    return done.returncode, time.perf_counter() - started, done.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--no-faults", dest="faults", action="store_false")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--keep", action="store_true", help="keep the work folder and say where")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} is absent: the shared data sits beside the project (../shared)")
    items = read_items(args.data)
    first, last = int(items[0]["TIMESTAMP"]), int(items[-1]["TIMESTAMP"])
    work = Path(tempfile.mkdtemp(prefix="cron-replay-"))
    (work / "feeds").mkdir()

    def end(number: int) -> int:
        return first + (last - first) * number // args.runs

    # Faults go on runs whose slice brings news (the data has quiet stretches).
    busy = [
        n
        for n in range(1, args.runs + 1)
        if any(end(n - 1) < int(r["TIMESTAMP"]) <= end(n) for r in items)
    ]
    faults: dict[int, str] = {}
    if args.faults:
        b = len(busy)
        faults = {
            busy[b // 6]: "451",
            busy[b // 6 + 1]: "451",
            busy[b // 6 + 2]: "554",
            busy[b // 3]: "kill before send",
            busy[b // 2]: "kill after send",
            busy[(2 * b) // 3]: "overlap",
        }
    kills = {
        "kill before send": "aggregator.mail:SmtpSender.send",
        "kill after send": "aggregator.store:Store.mail_attempted",
    }
    outcomes: list[str] = []
    seconds: list[float] = []
    with SmtpServer() as server:
        for number in range(1, args.runs + 1):
            upto = end(number)
            feeds = write_feeds(work / "feeds", items, upto)
            config = work / "config.yaml"
            config.write_text(
                f"database: {work / 'news.db'}\nfeeds:\n"
                + "".join(f"  - {p}\n" for p in feeds)
                + "polling:\n  parse_workers: 0\ndigest:\n  limit: 0\n"
                + f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
                + "  security: none\n  from: news@example.org\n  to: [reader@example.org]\n",
                encoding="utf-8",
            )
            fault = faults.get(number)
            server.mailbox.data_reply = {"451": "451 4.3.0 busy", "554": "554 5.7.1 no"}.get(
                fault or ""
            )
            before = len(server.received)
            if fault == "overlap":
                from aggregator.runlock import run_lock

                with run_lock(work / "news.db"):
                    code, took, err = run(config, "--quiet", "run", "--all")
                    assert code == 0 and err == "", err
                outcomes.append(f"run {number}: a second run found the lock held and exited 0")
            code, took, err = run(config, "--quiet", "run", "--all", kill_in=kills.get(fault or ""))
            seconds.append(took)
            outcomes.append(
                f"run {number:2}: exit {code:3} {fault or '':17} "
                f"{len(server.received) - before} mail(s) {took:5.2f} s"
                + (f"  {err.strip().splitlines()[-1][:90]}" if err.strip() else "")
            )
        server.mailbox.data_reply = None
        code, took, err = run(config, "--quiet", "run", "--all")  # one more, fault-free
        outcomes.append(f"final run: exit {code}, {took:.2f} s")
        received = list(server.received)

    print("\n".join(outcomes))
    import sqlite3

    db = sqlite3.connect(work / "news.db")
    sources = dict(
        db.execute(
            """SELECT s.id, COUNT(DISTINCT i.feed_id) FROM stories s
               JOIN story_articles sa ON sa.story_id = s.id
               JOIN items i ON i.article_id = sa.article_id
               WHERE s.size >= 2 OR s.source_count >= 2 GROUP BY s.id"""
        ).fetchall()
    )
    aliases = dict(db.execute("SELECT alias_id, story_id FROM story_aliases").fetchall())
    seen_ids: set[str] = set()
    duplicates = repeated = 0
    mailed: dict[int, int] = {}
    for mail in received:
        message = mail.message
        if message["Message-ID"] in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(message["Message-ID"])
        for pair in str(message["X-Aggregator-Stories"] or "").split():
            story, shown = (int(x) for x in pair.split(":"))
            story = aliases.get(story, story)
            if story in mailed and shown <= mailed[story]:
                repeated += 1
            mailed[story] = max(mailed.get(story, 0), shown)
    lost = [s for s, n in sources.items() if mailed.get(s, 0) < n]
    print(
        f"\n{len(received)} mails ({len(seen_ids)} distinct Message-IDs), "
        f"{len(sources)} stories of 2+ articles or sources, {len(mailed)} mailed"
    )
    print(f"lost {len(lost)}; repeated without growth {repeated}; duplicate messages {duplicates}")
    print(f"run time: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s")
    if args.keep:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
