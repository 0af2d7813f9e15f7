"""Story quality with the default configuration: dev B3-F1, stability, and distractors.

    python benchmarks/story_quality.py [--shared ../shared] [--seeds 5]

- dev: `aggregator eval` on ../shared/data/uci-news-stories-dev.csv;
- stability: the dev stories split in two halves at random (by story), each half scored alone;
- distractors: every item of ../shared/corpus/real-feeds (parsed and normalised by aggregator's
  own stages) is given a random time inside the dev set's hours and replayed with it; an item
  counts as pulled in when its predicted story holds any dev headline. Run with summaries, and
  with titles only (the dev headlines have no summaries). Medians over --seeds seeds.
"""

from __future__ import annotations

import argparse
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import ClusteringConfig
from aggregator.errors import FeedError
from aggregator.evaluate import LabelledItem, evaluate, read_labels
from aggregator.normalize import normalize_entry
from aggregator.parse import parse_feed

ROOT = Path(__file__).resolve().parents[1]


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


if __name__ == "__main__":
    main()
