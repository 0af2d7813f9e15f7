"""How the clustering defaults were chosen: each one varied around the others, on every timing.

    python benchmarks/tune_clustering.py [--seeds 5] [--set quiet_cost=0.06,0.08 ...]

For each setting it replays, through `aggregator.evaluate.evaluate` (what `aggregator eval`
runs), the dev set with the 840 real-feed items as distractors (their summaries included) on
the original timing and on --seeds seeds of each re-timed profile of `benchmarks/streams.py`
(a, b and next-day), and the shared re-timed files (retimed-a and -b, without distractors). It
prints a row per setting: B3-F1 of each (mean / worst over the seeds), the most distractors
pulled into a story of the dev set in any of those streams, and the share of title-only
distractors pulled in on the original timing (median / worst over the seeds), where a story's
reach matters most because the dev stories are bursts a day apart.

Without --set, each default is varied on its own (one row per value; the defaults' row
first). With --set KEY=V1,V2 (repeatable), every combination of the values given is run.
Durations are hours. A setting that helps one profile and hurts another is not a choice.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import streams  # noqa: E402
from story_quality import distractors, pulled_in  # noqa: E402

from aggregator.config import ClusteringConfig  # noqa: E402
from aggregator.evaluate import LabelledItem, evaluate, read_labels  # noqa: E402

# What the default sweep varies, and the values it tries around the default.
AROUND: dict[str, tuple[float, ...]] = {
    "threshold": (0.12, 0.16),
    "one_word": (0.30, 0.50, 1.0),
    "quiet_cost": (0.06, 0.07, 0.10),
    "merge_threshold": (0.17, 0.25),
    "merge_agreement": (0.0, 0.2),
    "window": (18.0, 36.0),
}
PROFILES = ("a", "b", "nextday")


@dataclass(frozen=True)
class Streams:
    original: list[LabelledItem]
    shared_a: list[LabelledItem]
    shared_b: list[LabelledItem]
    seeded: dict[str, list[list[LabelledItem]]]
    dev: list[LabelledItem]
    titles: list[tuple[str, str]]


def prepare(shared: Path, seeds: int, tmp: Path) -> Streams:
    mix = streams.with_distractors(shared, tmp / "mix.csv")
    seeded = {
        profile: [
            streams.load(streams.retimed(mix, shared, profile, seed, tmp / f"{profile}{seed}.csv"))
            for seed in range(1000 * n + 1, 1000 * n + 1 + seeds)
        ]
        for n, profile in enumerate(PROFILES, start=1)
    }
    data = shared / "data"
    return Streams(
        original=streams.load(mix),
        shared_a=read_labels(data / "uci-news-stories-dev-retimed-a.csv"),
        shared_b=read_labels(data / "uci-news-stories-dev-retimed-b.csv"),
        seeded=seeded,
        dev=read_labels(data / "uci-news-stories-dev.csv"),
        titles=[(title, "") for title, _ in distractors(shared / "corpus" / "real-feeds")],
    )


def row(data: Streams, config: ClusteringConfig, seeds: int) -> list[str]:
    original = streams.score(data.original, evaluate(data.original, config))
    cells = [f"{original.f1:.3f}"]
    pulled = [original.distractors_pulled]
    for items in (data.shared_a, data.shared_b):
        cells.append(f"{evaluate(items, config).bcubed.f1:.3f}")
    for profile in PROFILES:
        found = [streams.score(items, evaluate(items, config)) for items in data.seeded[profile]]
        f1s = [q.f1 for q in found]
        cells.append(f"{statistics.mean(f1s):.3f} / {min(f1s):.3f}")
        pulled += [q.distractors_pulled for q in found]
    cells.append(f"{max(pulled):.1%}")
    titles = [pulled_in(data.dev, data.titles, config, seed) for seed in range(1, seeds + 1)]
    cells.append(f"{statistics.median(titles):.1%} / {max(titles):.1%}")
    return cells


def value(name: str, text: str) -> float | timedelta:
    number = float(text)
    return timedelta(hours=number) if name in ("window", "max_span") else number


def settings(chosen: list[str]) -> list[dict[str, float | timedelta]]:
    known = {f.name for f in fields(ClusteringConfig)}
    if not chosen:
        varied: list[dict[str, float | timedelta]] = [{}]
        for name, values in AROUND.items():
            varied += [{name: value(name, str(v))} for v in values]
        return varied
    grid: dict[str, list[float | timedelta]] = {}
    for item in chosen:
        name, _, values = item.partition("=")
        if name not in known or not values:
            raise SystemExit(f"--set {item}: expected KEY=V1,V2 with KEY one of {sorted(known)}")
        grid[name] = [value(name, v) for v in values.split(",")]
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def label(overrides: dict[str, float | timedelta]) -> str:
    if not overrides:
        return "defaults"
    parts = []
    for name, v in overrides.items():
        shown = f"{v.total_seconds() / 3600:g}h" if isinstance(v, timedelta) else f"{v:g}"
        parts.append(f"{name} {shown}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(args.shared, args.seeds, Path(tmp))
        head = [
            "setting",
            "original",
            "retimed-a",
            "retimed-b",
            "a: mean / worst",
            "b: mean / worst",
            "next-day: mean / worst",
            "distractors, worst",
            "title-only distractors",
        ]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for overrides in settings(args.set):
            config = replace(ClusteringConfig(), **overrides)  # type: ignore[arg-type]
            print(f"| {label(overrides)} | " + " | ".join(row(data, config, args.seeds)) + " |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
