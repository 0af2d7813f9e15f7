"""Labelled streams for story quality: the dev set re-timed by profile and seed, with distractors.

Profiles (each keeps a story's first article where it was and delays the others):
- ``original``: the dev set's own timing (every story crawled within about a minute);
- ``a``: ../shared/tools/retime.py's defaults, a log-normal delay with a median of 3 h;
- ``b``: retime.py with a median of 6 h, sigma 1.2, capped at 96 h (a longer tail);
- ``nextday``: ours. Like ``a``, but a share (35 %) of each story's later articles come back
  the next day, 18 to 30 h after the story began: the follow-ups a slow news day brings.

Distractors are every item of ../shared/corpus/real-feeds, with their summaries, as rows whose
STORY starts with ``distractor-``; every profile spreads them evenly over the stream's span.
``score`` gives the B3-F1 of the dev rows and the share of distractors pulled into a story
that holds a dev row.
"""

from __future__ import annotations

import csv
import math
import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from story_quality import distractors  # noqa: E402

from aggregator.evaluate import DISTRACTOR, EvalReport, LabelledItem, bcubed, read_labels  # noqa: E402

PROFILES = ("original", "a", "b", "nextday")
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Quality:
    f1: float
    precision: float
    recall: float
    distractors_pulled: float  # share of distractors in a story that holds a dev row


def with_distractors(shared: Path, dest: Path) -> Path:
    """The dev CSV plus the real-feeds items as distractors (with a SUMMARY column)."""
    rows = list(csv.DictReader((shared / "data" / "uci-news-stories-dev.csv").open()))
    texts = distractors(shared / "corpus" / "real-feeds")
    rng = random.Random(0)
    low = min(int(r["TIMESTAMP"]) for r in rows)
    high = max(int(r["TIMESTAMP"]) for r in rows)
    out = [{**r, "SUMMARY": ""} for r in rows]
    for n, (title, summary) in enumerate(texts):
        out.append(
            {
                "ID": f"d{n}",
                "TITLE": title,
                "URL": "",
                "PUBLISHER": "blog",
                "CATEGORY": "",
                "STORY": f"{DISTRACTOR}{n}",
                "HOSTNAME": "blog",
                "TIMESTAMP": str(rng.randint(low, high)),
                "SUMMARY": summary,
            }
        )
    _write(dest, out)
    return dest


def retimed(source: Path, shared: Path, profile: str, seed: int, dest: Path) -> Path:
    """``source`` re-timed by ``profile`` with ``seed`` (``original``: ``source`` itself)."""
    if profile == "original":
        return source
    if profile == "nextday":
        _next_day(source, dest, seed)
        return dest
    args = ["--seed", str(seed)]
    if profile == "b":
        args += ["--median-h", "6", "--sigma", "1.2", "--cap-h", "96"]
    tool = shared / "tools" / "retime.py"
    subprocess.run([sys.executable, str(tool), str(source), str(dest), *args], check=True)
    return dest


def _next_day(source: Path, dest: Path, seed: int, share: float = 0.35) -> None:
    rng = random.Random(seed)
    rows = list(csv.DictReader(source.open(newline="")))
    stories: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if not row["STORY"].startswith(DISTRACTOR):
            stories.setdefault(row["STORY"], []).append(row)
    low = min(int(r["TIMESTAMP"]) for r in rows)
    high = low
    for members in stories.values():
        members.sort(key=lambda r: int(r["TIMESTAMP"]))
        start = int(members[0]["TIMESTAMP"])
        for i, row in enumerate(members):
            if i == 0:
                delay = 0.0
            elif rng.random() < share:
                delay = rng.uniform(18, 30) + rng.lognormvariate(0.0, 1.0)
            else:
                delay = min(72.0, rng.lognormvariate(math.log(3.0), 1.0))
            row["TIMESTAMP"] = str(start + int(delay * HOUR_MS))
            high = max(high, int(row["TIMESTAMP"]))
    for row in rows:
        if row["STORY"].startswith(DISTRACTOR):
            row["TIMESTAMP"] = str(rng.randint(low, high))
    rows.sort(key=lambda r: int(r["TIMESTAMP"]))
    _write(dest, rows)


def _write(dest: Path, rows: Sequence[dict[str, str]]) -> None:
    with dest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load(path: Path) -> list[LabelledItem]:
    return read_labels(path)


def score(items: Sequence[LabelledItem], report: EvalReport) -> Quality:
    """B3 of the dev rows alone, and the share of distractors eval found pulled into a story."""
    labels = [p for _, p in report.assignments]
    dev = [i for i, item in enumerate(items) if not item.story.startswith(DISTRACTOR)]
    b3 = bcubed([items[i].story for i in dev], [labels[i] for i in dev])
    pulled = report.distractors_pulled / report.distractors if report.distractors else 0.0
    return Quality(b3.f1, b3.precision, b3.recall, pulled)
