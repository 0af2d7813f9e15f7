"""Where a clusterer's recall goes: the articles that began a story of their own while their
labelled story already had one.

    python benchmarks/fragments.py ../shared/data/uci-news-stories-dev-retimed-a.csv

Replays the labelled file as `aggregator eval` does (the default configuration). For each such
article it records the story its labelled story mostly went to so far, and whether that story
was still within reach; if so, the hours since its latest article, the words they share and
the cosine with its centroid. It prints the counts, and every --show-th example.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from aggregator.cluster import StoryClusterer, reach
from aggregator.config import ClusteringConfig
from aggregator.evaluate import DISTRACTOR, read_labels
from aggregator.models import ClusterDoc


def bucket(value: float, edges: list[float]) -> str:
    return next((f"< {e}" for e in edges if value < e), f">= {edges[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print every Nth example")
    args = parser.parse_args()
    items = read_labels(args.labels)
    config = ClusteringConfig()
    clusterer = StoryClusterer(config)
    went: dict[str, Counter[int]] = defaultdict(Counter)
    out_of_reach = 0
    within: list[tuple[float, float, int]] = []
    ordered = sorted(enumerate(items), key=lambda pair: (pair[1].published, pair[0]))
    for index, item in ordered:
        doc = ClusterDoc(index + 1, item.title, item.summary, item.source, item.published)
        main_story = None
        if went[item.story]:
            main_story = clusterer.resolve(went[item.story].most_common(1)[0][0])
        before = clusterer.stories.get(main_story) if main_story is not None else None
        figures = None
        if before is not None:
            vector = clusterer._vector(clusterer.terms(doc))
            dot = sum(w * before.centroid.get(t, 0.0) for t, w in vector.items())
            shared = [t for t in vector if t in before.centroid and not t.isdigit()]
            hours = (item.published - before.last).total_seconds() / 3600
            figures = (dot / (before.norm or 1.0), hours, len(shared))
        placed = clusterer.add(doc)
        clusterer.expire(item.published - reach(config))
        if item.story.startswith(DISTRACTOR):
            continue
        if main_story is not None and placed.new_story:
            if figures is None:
                out_of_reach += 1
            else:
                within.append(figures)
                if args.show and len(within) % args.show == 0:
                    print(
                        f"{figures[0]:.2f} {figures[1]:.1f} h, {figures[2]} shared | "
                        f"{item.title[:70]} || {clusterer.summary(main_story).title[:60]}"
                    )
        went[item.story][clusterer.resolve(placed.story)] += 1
    print(f"articles that began a story while theirs had one: {out_of_reach + len(within)}")
    print(f"  its story out of reach: {out_of_reach}")
    print(f"  within reach: {len(within)}")
    hours = Counter(bucket(h, [1, 3, 6, 12, 24]) for _, h, _ in within)
    print("    hours since its latest article:", dict(sorted(hours.items())))
    print("    sharing fewer than two words:", sum(1 for *_, shared in within if shared < 2))
    cosines = Counter(bucket(c, [0.05, 0.1, 0.2, 0.3, 0.5]) for c, _, _ in within)
    print("    cosine with its centroid:", dict(sorted(cosines.items())))


if __name__ == "__main__":
    main()
