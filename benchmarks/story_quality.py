"""Story quality with the default configuration: dev B3-F1, stability, distractors, timings.

    python benchmarks/story_quality.py [--shared ../shared] [--seeds 5]

- dev: `aggregator eval` on ../shared/data/uci-news-stories-dev.csv;
- stability: the dev stories split in two halves at random (by story), each half scored alone;
- distractors: every item of ../shared/corpus/real-feeds (parsed and normalised by aggregator's
  own stages) is given a random time inside the dev set's hours and replayed with it; an item
  counts as pulled in when its predicted story holds any dev headline. Run with summaries, and
  with titles only (the dev headlines have no summaries). Medians over --seeds seeds.
- timings: the shared original, retimed-a and retimed-b files, then the dev set with the
  real-feeds distractors re-timed by each profile of benchmarks/streams.py (a, b, nextday)
  with --seeds more seeds each (1001.., 2001.., 3001..: not those the story model's training
  uses): B3-F1 of the dev rows, mean and worst, and the worst share of distractors pulled
  into a story.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import ClusteringConfig
from aggregator.errors import FeedError
from aggregator.evaluate import LabelledItem, evaluate, read_labels
from aggregator.normalize import normalize_entry
from aggregator.parse import parse_feed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def distractors(corpus: Path) -> list[tuple[str, str]]:
    """(title, summary) of every item in the corpus, once (some feeds ship in two formats)."""
    now = datetime.now(UTC)
    found: dict[tuple[str, str], None] = {}
    for path in sorted(corpus.iterdir()):
        if path.suffix == ".opml" or path.name.startswith("LICENSE"):
            continue
        try:
            feed = parse_feed(str(path), path.read_bytes())
        except FeedError:
            continue
        for entry in feed.entries:
            article = normalize_entry(entry, feed_url=str(path), feed_link=feed.link, now=now)
            if article is not None:
                found[(article.title, article.summary)] = None
    return list(found)


def pulled_in(
    dev: list[LabelledItem], texts: list[tuple[str, str]], config: ClusteringConfig, seed: int
) -> float:
    rng = random.Random(seed)
    start = min(i.published for i in dev)
    span = (max(i.published for i in dev) - start).total_seconds()
    extra = [
        LabelledItem(
            f"d{n}",
            title,
            summary,
            "blog",
            f"d{n}",
            start + timedelta(seconds=rng.uniform(0, span)),
        )
        for n, (title, summary) in enumerate(texts)
    ]
    report = evaluate([*dev, *extra], config)
    predicted = dict(report.assignments)
    dev_stories = {predicted[i.id] for i in dev}
    return sum(predicted[i.id] in dev_stories for i in extra) / len(extra)


def timings(shared: Path, config: ClusteringConfig, seeds: int) -> None:
    import tempfile

    import streams

    for name in ("", "-retimed-a", "-retimed-b"):
        path = shared / "data" / f"uci-news-stories-dev{name}.csv"
        report = evaluate(read_labels(path), config)
        print(
            f"{path.name}: B3-F1 {report.bcubed.f1:.4f} (P {report.bcubed.precision:.3f}, "
            f"R {report.bcubed.recall:.3f}), story span median "
            f"{report.median_span.total_seconds() / 3600:.1f} h"
        )
    with tempfile.TemporaryDirectory() as tmp:
        mix = streams.with_distractors(shared, Path(tmp) / "mix.csv")
        for n, profile in enumerate(("original", "a", "b", "nextday")):
            found = []
            for seed in range(1000 * n + 1, 1000 * n + 1 + (seeds if n else 1)):
                path = streams.retimed(mix, shared, profile, seed, Path(tmp) / f"{seed}.csv")
                items = streams.load(path)
                report = evaluate(items, config)
                found.append(streams.score(items, report))
            f1s = [q.f1 for q in found]
            print(
                f"{profile} with distractors, {len(found)} seed(s): B3-F1 mean "
                f"{statistics.mean(f1s):.4f}, worst {min(f1s):.4f}; distractors pulled in at "
                f"most {max(q.distractors_pulled for q in found):.2%}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    config = ClusteringConfig()
    dev = read_labels(args.shared / "data" / "uci-news-stories-dev.csv")

    report = evaluate(dev, config)
    b = report.bcubed
    print(
        f"dev: B3 P {b.precision:.3f} R {b.recall:.3f} F1 {b.f1:.4f}, ARI {report.ari:.3f}, "
        f"{report.predicted_stories} stories, {report.docs_per_second:,.0f} docs/s"
    )

    stories = sorted({i.story for i in dev})
    for seed in range(3):
        shuffled = random.Random(seed).sample(stories, len(stories))
        half = set(shuffled[: len(stories) // 2])
        a = evaluate([i for i in dev if i.story in half], config).bcubed.f1
        b2 = evaluate([i for i in dev if i.story not in half], config).bcubed.f1
        print(f"split {seed}: half A F1 {a:.3f}, half B F1 {b2:.3f}")

    texts = distractors(args.shared / "corpus" / "real-feeds")
    for label, items in (("with summaries", texts), ("titles only", [(t, "") for t, _ in texts])):
        rates = [pulled_in(dev, items, config, seed) for seed in range(1, args.seeds + 1)]
        print(
            f"distractors {label}: {len(items)} items, pulled into a dev story: median "
            f"{statistics.median(rates):.2%} (range {min(rates):.2%}-{max(rates):.2%})"
        )
    timings(args.shared, config, args.seeds)


if __name__ == "__main__":
    main()
