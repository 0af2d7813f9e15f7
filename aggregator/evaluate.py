"""Measure story quality: replay labelled headlines through the clusterer and score the result.

Metrics (all pure functions of two labelings):
- B-cubed precision/recall/F1 (Bagga & Baldwin 1998): per item, how much of its predicted
  cluster shares its true label, and how much of its true class shares its predicted cluster.
- Pairwise precision/recall/F1 over all pairs of items put together.
- Adjusted Rand index (scikit-learn's implementation).
"""

from __future__ import annotations

import csv
import statistics
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .cluster import StoryClusterer, reach
from .config import ClusteringConfig
from .errors import EvalError
from .models import ClusterDoc

__all__ = ["EvalReport", "LabelledItem", "bcubed", "evaluate", "pairwise", "read_labels"]

DISTRACTOR = "distractor-"
REQUIRED = ("ID", "TITLE", "PUBLISHER", "STORY", "TIMESTAMP")
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LabelledItem:
    id: str
    title: str
    summary: str
    source: str
    story: str
    published: datetime


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class EvalReport:
    items: int
    true_stories: int
    predicted_stories: int
    bcubed: Scores
    pairwise: Scores
    ari: float
    seconds: float
    assignments: tuple[tuple[str, int], ...]
    # How hard the timing was: the median time from a story's first article to its last.
    median_span: timedelta = timedelta(0)
    # Rows whose STORY starts with "distractor-" belong to no story: how many there were, and
    # how many were put in a predicted story that holds a row of a real story.
    distractors: int = 0
    distractors_pulled: int = 0

    @property
    def docs_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "true_stories": self.true_stories,
            "predicted_stories": self.predicted_stories,
            "bcubed": vars(self.bcubed),
            "pairwise": vars(self.pairwise),
            "ari": self.ari,
            "median_span_seconds": round(self.median_span.total_seconds(), 1),
            "distractors": self.distractors,
            "distractors_pulled": self.distractors_pulled,
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.docs_per_second, 1),
        }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def bcubed(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> Scores:
    """B-cubed precision, recall and F1, averaged over items."""
    if len(truth) != len(predicted):
        raise ValueError("labelings differ in length")
    if not truth:
        return Scores(0.0, 0.0, 0.0)
    joint = Counter(zip(truth, predicted, strict=True))
    true_sizes = Counter(truth)
    pred_sizes = Counter(predicted)
    # Each item in cell (t, p) has precision n_tp/|p| and recall n_tp/|t|.
    precision = sum(n * n / pred_sizes[p] for (t, p), n in joint.items()) / len(truth)
    recall = sum(n * n / true_sizes[t] for (t, p), n in joint.items()) / len(truth)
    return Scores(precision, recall, _f1(precision, recall))


def pairwise(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> Scores:
    """Precision and recall over unordered pairs of items placed together."""

    def pairs(counts: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter(zip(truth, predicted, strict=True)))
    predicted_pairs = pairs(Counter(predicted))
    true_pairs = pairs(Counter(truth))
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return Scores(precision, recall, _f1(precision, recall))


def read_labels(path: Path) -> list[LabelledItem]:
    """Read the labelled CSV (ID, TITLE, URL, PUBLISHER, STORY, HOSTNAME, TIMESTAMP[, SUMMARY])."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise EvalError(f"{path}: missing column(s) {', '.join(missing)}")
            items = []
            for line, row in enumerate(reader, start=2):
                try:
                    stamp = datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, tz=UTC)
                except (TypeError, ValueError, OverflowError, OSError) as e:
                    raise EvalError(f"{path}:{line}: TIMESTAMP is not milliseconds") from e
                if not EARLIEST <= stamp <= LATEST:
                    raise EvalError(f"{path}:{line}: TIMESTAMP {row['TIMESTAMP']} is out of range")
                items.append(
                    LabelledItem(
                        id=row["ID"],
                        title=row["TITLE"] or "",
                        summary=row.get("SUMMARY") or "",
                        source=row["PUBLISHER"] or row.get("HOSTNAME") or "",
                        story=row["STORY"],
                        published=stamp,
                    )
                )
    except OSError as e:
        raise EvalError(f"{path}: cannot read: {e.strerror or e}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise EvalError(f"{path}: not a readable CSV: {e}") from e
    if not items:
        raise EvalError(f"{path}: no rows")
    return items


def evaluate(items: Sequence[LabelledItem], config: ClusteringConfig) -> EvalReport:
    """Replay ``items`` in time order through the clusterer that `poll` uses, and score it."""
    from sklearn.metrics import adjusted_rand_score

    ordered = sorted(enumerate(items), key=lambda pair: (pair[1].published, pair[0]))
    started = time.perf_counter()
    clusterer = StoryClusterer(config)
    predicted: dict[int, int] = {}
    for index, item in ordered:
        doc = ClusterDoc(
            key=index + 1,
            title=item.title,
            summary=item.summary,
            source=item.source,
            published=item.published,
        )
        predicted[index] = clusterer.add(doc).story
        clusterer.expire(item.published - reach(config))
    seconds = time.perf_counter() - started
    truth = [item.story for item in items]
    # Stories that converged were merged: each item belongs to the story its own merged into.
    labels = [clusterer.resolve(predicted[i]) for i in range(len(items))]
    distractor = [item.story.startswith(DISTRACTOR) for item in items]
    with_story = {label for label, d in zip(labels, distractor, strict=True) if not d}
    pulled = sum(
        1 for label, d in zip(labels, distractor, strict=True) if d and label in with_story
    )
    # Stories are numbered 1.. in order of first appearance, for a readable assignments file.
    numbering: dict[int, int] = {}
    for label in labels:
        numbering.setdefault(label, len(numbering) + 1)
    return EvalReport(
        items=len(items),
        true_stories=len(set(truth)),
        predicted_stories=len(numbering),
        bcubed=bcubed(truth, labels),
        pairwise=pairwise(truth, labels),
        ari=float(adjusted_rand_score(truth, labels)),
        seconds=seconds,
        assignments=tuple(
            (item.id, numbering[label]) for item, label in zip(items, labels, strict=True)
        ),
        median_span=_median_span(items),
        distractors=sum(distractor),
        distractors_pulled=pulled,
    )


def _median_span(items: Sequence[LabelledItem]) -> timedelta:
    """The median, over the real stories, of the time from their first article to their last."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for item in items:
        if item.story.startswith(DISTRACTOR):
            continue
        first, last = spans.get(item.story, (item.published, item.published))
        spans[item.story] = (min(first, item.published), max(last, item.published))
    if not spans:
        return timedelta(0)
    seconds = statistics.median((last - first).total_seconds() for first, last in spans.values())
    return timedelta(seconds=seconds)


def write_assignments(report: EvalReport, path: Path) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["ID", "PREDICTED"])
            writer.writerows(report.assignments)
    except OSError as e:
        raise EvalError(f"{path}: cannot write: {e.strerror or e}") from e
