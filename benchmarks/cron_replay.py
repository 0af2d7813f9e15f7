"""Cron, replayed on a simulated clock: how many mails a day, is every story mailed, never
twice unless it grew, through faults?

The dev story data (../shared/data/uci-news-stories-dev.csv, 33 hours of items) is spread over
``--days`` simulated days. ``aggregator --quiet run --all`` runs every ``--every`` minutes of
that clock, each in its own process told the simulated time, mailing to an aiosmtpd server on
loopback, with ``digest.at`` (``--at``, 07:00 and 18:00 UTC by default; ``--at ""`` for a
digest on every run, to compare). Before each run, every outlet's feed (a local RSS file, one
per HOSTNAME) is rewritten to hold its items published by then, the newest 60.

Faults, on chosen runs (``--no-faults`` for a clean replay), on digest times with the schedule
on, on runs that bring news without it:
- the server answers 451 to DATA for two runs in a row, then 554 for one (the digest waits in
  the outbox; nothing new queues behind it);
- kill -9 after the digest is in the outbox and before the send;
- kill -9 after the send and before it is marked sent (the one duplicate allowed);
- a second run started while the first holds the lock.

What is checked, from the mails the server received (header ``X-Aggregator-Stories``,
``id:sources`` of each story, the compact list's included) and the database at the end, after
one more run at the next morning's digest time:
- mails per simulated day;
- lost: a story of two articles or sources or more (min_size) whose sources now exceed the
  most any mail showed; it must be 0;
- repeated: a story mailed again, under the same id, with no more sources than before, counting
  a resent message (same Message-ID) apart; must be 0 (a story merged since into one mailed
  before was a story of its own when it was mailed, and is judged as such);
- duplicates: messages received twice (same Message-ID): at most one per kill after the send;
- the time of each run.

    python benchmarks/cron_replay.py                  # 3 days, every 30 min, 07:00 and 18:00
    python benchmarks/cron_replay.py --at ""          # the same, a digest on every run
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.processes import aggregator_process  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "uci-news-stories-dev.csv"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # the simulated clock starts on a Monday


def _passed(at: str, before: datetime, now: datetime) -> bool:
    """Whether the time of day ``at`` (UTC) came in (before, now]."""
    hour, minute = (int(x) for x in at.split(":"))
    day = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return before < day <= now or before < day - timedelta(days=1) <= now


def read_items(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=lambda r: int(r["TIMESTAMP"]))


def write_feeds(
    directory: Path, items: list[dict[str, str]], upto: datetime, when: Callable[[int], datetime]
) -> list[Path]:
    by_host: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in items:
        by_host[row["HOSTNAME"]].append(row)
    paths = []
    for host, rows in sorted(by_host.items()):
        path = directory / f"{host}.xml"
        shown = [r for r in rows if when(int(r["TIMESTAMP"])) <= upto][-60:]
        entries = "".join(
            f"<item><title>{escape(r['TITLE'])}</title><link>{escape(r['URL'])}</link>"
            f"<guid isPermaLink='false'>uci-{r['ID']}</guid><pubDate>"
            f"{format_datetime(when(int(r['TIMESTAMP'])))}</pubDate></item>"
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


def run(
    config: Path, clock: datetime, *args: str, kill_in: str | None = None
) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = aggregator_process(config, *args, kill_in=kill_in, timeout=600, clock=clock)
    return done.returncode, time.perf_counter() - started, done.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--every", type=int, default=30, help="minutes between runs")
    ap.add_argument("--at", default="07:00,18:00", help='digest times (UTC); "" for every run')
    ap.add_argument("--no-faults", dest="faults", action="store_false")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--keep", action="store_true", help="keep the work folder and say where")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} is absent: the shared data sits beside the project (../shared)")
    items = read_items(args.data)
    first, last = int(items[0]["TIMESTAMP"]), int(items[-1]["TIMESTAMP"])
    span = timedelta(days=args.days)
    times = [t.strip() for t in args.at.split(",") if t.strip()]

    def when(timestamp: int) -> datetime:
        """An item's time on the simulated clock: the data's 33 hours spread over the days."""
        return START + span * ((timestamp - first) / (last - first))

    work = Path(tempfile.mkdtemp(prefix="cron-replay-"))
    (work / "feeds").mkdir()
    clocks = [START + timedelta(minutes=m) for m in range(0, args.days * 1440, args.every)]
    clocks.append(START + span + timedelta(hours=7))  # the next morning, at the digest time
    slot_runs = [
        c for i, c in enumerate(clocks) if i and any(_passed(t, clocks[i - 1], c) for t in times)
    ]
    busy = [
        c
        for i, c in enumerate(clocks)
        if i and any(clocks[i - 1] < when(int(r["TIMESTAMP"])) <= c for r in items)
    ]
    chosen = slot_runs[:-1] if times else busy
    faults: dict[datetime, str] = {}
    if args.faults and len(chosen) >= 5:
        b = len(chosen)
        step = timedelta(minutes=args.every)
        first_fault = chosen[1]
        faults = {
            first_fault: "451",
            first_fault + step: "451",
            first_fault + 2 * step: "554",
            chosen[b // 2]: "kill before send",
            chosen[(3 * b) // 4]: "kill after send",
            chosen[b // 2] + 3 * step: "overlap",
        }
    kills = {
        "kill before send": "aggregator.mail:SmtpSender.send",
        "kill after send": "aggregator.store:Store.mail_attempted",
    }
    schedule = f"  at: [{', '.join(repr(t) for t in times)}]\n  timezone: UTC\n" if times else ""
    outcomes: list[str] = []
    seconds: list[float] = []
    mails_by_day: Counter[int] = Counter()
    config = work / "config.yaml"
    with SmtpServer() as server:
        for now in clocks:
            feeds = write_feeds(work / "feeds", items, now, when)
            config.write_text(
                f"database: {work / 'news.db'}\nfeeds:\n"
                + "".join(f"  - {p}\n" for p in feeds)
                + "polling:\n  parse_workers: 0\n"
                + (f"digest:\n{schedule}" if schedule else "")
                + f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
                + "  security: none\n  from: news@example.org\n  to: [reader@example.org]\n",
                encoding="utf-8",
            )
            fault = faults.get(now)
            server.mailbox.data_reply = {"451": "451 4.3.0 busy", "554": "554 5.7.1 no"}.get(
                fault or ""
            )
            before = len(server.received)
            if fault == "overlap":
                from aggregator.runlock import run_lock

                with run_lock(work / "news.db"):
                    code, took, err = run(config, now, "--quiet", "run", "--all")
                    assert code == 0 and err == "", err
                outcomes.append(f"{now:%a %H:%M}: a second run found the lock held and exited 0")
            code, took, err = run(
                config, now, "--quiet", "run", "--all", kill_in=kills.get(fault or "")
            )
            seconds.append(took)
            sent = len(server.received) - before
            mails_by_day[(now - START).days + 1] += sent
            if sent or fault or code:
                outcomes.append(
                    f"{now:%a %H:%M}: exit {code:3} {fault or '':17} {sent} mail(s) {took:5.2f} s"
                    + (f"  {err.strip().splitlines()[-1][:90]}" if err.strip() else "")
                )
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
    mailed_as: dict[int, int] = {}
    for mail in received:
        message = mail.message
        if message["Message-ID"] in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(message["Message-ID"])
        for pair in str(message["X-Aggregator-Stories"] or "").split():
            story, shown = (int(x) for x in pair.split(":"))
            # A repeat is judged by the id the mail showed: a story mailed before another was
            # merged into it was a story of its own then, whatever the survivor had.
            if story in mailed_as and shown <= mailed_as[story]:
                repeated += 1
                print(
                    f"repeated: story {story} ({shown} sources) in {message['Date']}; "
                    f"mailed before with {mailed_as[story]}"
                )
            mailed_as[story] = max(mailed_as.get(story, 0), shown)
            story = aliases.get(story, story)  # lost: judged by the story it is now
            mailed[story] = max(mailed.get(story, 0), shown)
    lost = [s for s, n in sources.items() if mailed.get(s, 0) < n]
    print(
        f"\n{len(clocks)} runs every {args.every} min over {args.days} simulated days, "
        f"digest.at {times or 'unset (a digest on every run)'}, "
        f"{'with' if faults else 'without'} faults"
    )
    per_day = ", ".join(f"day {d}: {mails_by_day[d]}" for d in sorted(mails_by_day))
    print(f"mails per day: {per_day} (the last: the next morning's one run)")
    print(
        f"{len(received)} mails ({len(seen_ids)} distinct Message-IDs), "
        f"{len(sources)} stories of 2+ articles or sources, {len(mailed)} mailed"
    )
    print(f"lost {len(lost)}; repeated without growth {repeated}; duplicate messages {duplicates}")
    print(f"run time: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s")
    if args.keep:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
