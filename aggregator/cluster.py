"""PROTOTYPE (being tuned)."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from .config import ClusteringConfig

__all__ = ["ClusterDoc", "Placement", "StoryClusterer", "StorySummary"]

Vector = dict[str, float]

EXP: dict[str, Any] = {
    "mode": "centroid",  # centroid | max | top2 | blend
    "reps": 16,
    "cands": 8,
    "half_life": 0.0,  # hours; 0 = no decay
    "min_shared": 1,
    "alpha": 0.5,
    "ngram": 2,
    "cap": 0,
    "key_frac": 0.0,
    "min_keys": 2,
    "strong": 99.0,
    "merge": 0.0,
}


@dataclass(frozen=True)
class ClusterDoc:
    key: int
    title: str
    summary: str
    source: str
    published: datetime
    story: int | None = None


@dataclass(frozen=True)
class Placement:
    article: int
    story: int
    similarity: float | None
    new_story: bool


@dataclass(frozen=True)
class StorySummary:
    story: int
    title: str
    terms: tuple[str, ...]


@dataclass
class _Story:
    key: int
    first: datetime
    last: datetime
    centroid: Vector = field(default_factory=dict)
    norm2: float = 0.0
    maxw: float = 0.0
    members: list[tuple[ClusterDoc, Vector]] = field(default_factory=list)
    reps: deque[tuple[ClusterDoc, Vector]] = field(default_factory=deque)

    @property
    def norm(self) -> float:
        return math.sqrt(max(self.norm2, 0.0))

    def add(self, doc: ClusterDoc, vector: Vector, reps: int) -> None:
        for term, weight in vector.items():
            old = self.centroid.get(term, 0.0)
            self.centroid[term] = old + weight
            self.norm2 += (old + weight) ** 2 - old * old
            self.maxw = max(self.maxw, old + weight)
        self.members.append((doc, vector))
        self.reps.append((doc, vector))
        if len(self.reps) > reps:
            self.reps.popleft()
        self.first = min(self.first, doc.published)
        self.last = max(self.last, doc.published)

    def prune(self, cap: int) -> list[str]:
        if not cap or len(self.centroid) <= 2 * cap:
            return []
        ranked = sorted(self.centroid.items(), key=lambda kv: -kv[1])
        self.centroid = dict(ranked[:cap])
        self.norm2 = sum(w * w for w in self.centroid.values())
        return [t for t, _ in ranked[cap:]]


def _analyzer() -> Callable[[str], list[str]]:
    return _analyzer_n(EXP["ngram"])


@cache
def _analyzer_n(n: int) -> Callable[[str], list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer: Callable[[str], list[str]] = TfidfVectorizer(
        stop_words="english", ngram_range=(1, n), strip_accents="unicode", lowercase=True
    ).build_analyzer()
    return analyzer


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


class StoryClusterer:
    def __init__(
        self,
        config: ClusteringConfig,
        *,
        document_frequencies: Mapping[str, int] | None = None,
        documents: int = 0,
        new_key: Callable[[ClusterDoc], int] | None = None,
    ) -> None:
        self.config = config
        self.df: dict[str, int] = dict(document_frequencies or {})
        self.documents = documents
        self.df_increments: dict[str, int] = defaultdict(int)
        self.stories: dict[int, _Story] = {}
        self._index: dict[str, set[int]] = defaultdict(set)
        self._new_key = new_key or (lambda doc: -doc.key)
        self.touched: set[int] = set()
        self.merges: list[tuple[int, int]] = []
        self._scored: list[tuple[float, int]] = []

    def terms(self, doc: ClusterDoc) -> dict[str, float]:
        counts: dict[str, float] = defaultdict(float)
        for term in _analyzer()(doc.title):
            counts[term] += self.config.title_weight
        if self.config.summary_chars:
            for term in _analyzer()(doc.summary[: self.config.summary_chars]):
                counts[term] += 1.0
        return counts

    def _vector(self, counts: Mapping[str, float]) -> Vector:
        n = self.documents
        vector = {
            t: (1.0 + math.log(c)) * (math.log((n + 1) / (self.df.get(t, 0) + 1)) + 1.0)
            for t, c in counts.items()
            if c > 0
        }
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {t: w / norm for t, w in vector.items()} if norm else {}

    def _count(self, counts: Mapping[str, float]) -> None:
        self.documents += 1
        for term in counts:
            self.df[term] = self.df.get(term, 0) + 1
            self.df_increments[term] += 1

    def load(self, docs: Iterable[ClusterDoc]) -> None:
        for doc in docs:
            if doc.story is None:
                continue
            vector = self._vector(self.terms(doc))
            story = self.stories.get(doc.story)
            if story is None:
                story = self.stories[doc.story] = _Story(doc.story, doc.published, doc.published)
            story.add(doc, vector, EXP["reps"])
            self._index_terms(story.key, vector)

    def add(self, doc: ClusterDoc) -> Placement:
        counts = self.terms(doc)
        self._count(counts)
        vector = self._vector(counts)
        best, best_score = self._best_story(doc, vector)
        if best is not None and best_score >= self.config.threshold:
            story = self.stories[best]
            placement = Placement(doc.key, best, round(best_score, 4), new_story=False)
        else:
            key = self._new_key(doc)
            story = self.stories[key] = _Story(key, doc.published, doc.published)
            placement = Placement(doc.key, key, None, new_story=True)
        story.add(doc, vector, EXP["reps"])
        self._index_terms(story.key, vector)
        for term in story.prune(EXP["cap"]):
            keys = self._index.get(term)
            if keys is not None:
                keys.discard(story.key)
        self.touched.add(story.key)
        if EXP["merge"]:
            self._merge(story, doc)
        return placement

    def _merge(self, story: _Story, doc: ClusterDoc) -> None:
        for score, key in self._scored:
            if key == story.key or key not in self.stories or score < EXP["merge"]:
                continue
            other = self.stories[key]
            older, younger = (story, other) if (story.first, story.key) <= (other.first, other.key) else (other, story)
            for d, v in younger.members:
                older.add(d, v, EXP["reps"])
                self._index_terms(older.key, v)
            self.stories.pop(younger.key)
            for term in younger.centroid:
                keys = self._index.get(term)
                if keys is not None:
                    keys.discard(younger.key)
            self.merges.append((older.key, younger.key))
            self.touched.add(older.key)
            story = older

    def _index_terms(self, key: int, vector: Vector) -> None:
        for term in vector:
            self._index[term].add(key)

    def _best_story(self, doc: ClusterDoc, vector: Vector) -> tuple[int | None, float]:
        window = self.config.window
        dots: dict[int, float] = defaultdict(float)
        for term, weight in vector.items():
            for key in self._index.get(term, ()):
                dots[key] += weight * self.stories[key].centroid.get(term, 0.0)
        cands: list[tuple[float, int]] = []
        for key, dot in dots.items():
            story = self.stories[key]
            if doc.published - story.last > window or story.first - doc.published > window:
                continue
            cands.append((dot / story.norm if story.norm else 0.0, key))
        cands.sort(reverse=True)
        mode = EXP["mode"]
        hl = EXP["half_life"]
        best, best_score = None, 0.0
        scored: list[tuple[float, int]] = []
        self._scored = scored
        for cos, key in cands[: EXP["cands"]]:
            story = self.stories[key]
            if mode == "centroid":
                score = cos
            else:
                sims = sorted((_dot(vector, v) for _, v in story.reps), reverse=True)
                if mode == "max":
                    score = sims[0]
                elif mode == "top2":
                    score = sum(sims[:2]) / min(2, len(sims)) if sims else 0.0
                else:
                    a = EXP["alpha"]
                    score = a * sims[0] + (1 - a) * cos
            if EXP["min_shared"] > 1:
                shared = sum(1 for t in vector if " " not in t and t in story.centroid)
                if shared < EXP["min_shared"]:
                    continue
            if EXP["key_frac"] and score < EXP["strong"] * self.config.threshold:
                floor = EXP["key_frac"] * story.maxw
                keys = sum(1 for t in vector if story.centroid.get(t, 0.0) >= floor)
                if keys < EXP["min_keys"]:
                    continue
            if hl:
                dt = abs((doc.published - story.last).total_seconds()) / 3600
                score *= 0.5 ** (dt / hl)
            scored.append((score, key))
            if score > best_score:
                best, best_score = key, score
        return best, best_score

    def expire(self, before: datetime) -> None:
        for key in [k for k, s in self.stories.items() if s.last < before]:
            story = self.stories.pop(key)
            for term in story.centroid:
                keys = self._index.get(term)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[term]

    def summary(self, key: int) -> StorySummary:
        story = self.stories[key]
        norm = story.norm or 1.0

        def closeness(member: tuple[ClusterDoc, Vector]) -> tuple[float, int]:
            doc, vector = member
            dot = sum(w * story.centroid.get(t, 0.0) for t, w in vector.items()) / norm
            return (dot, -doc.key)

        headline = max(story.members, key=closeness)[0].title
        return StorySummary(key, headline, self._top_terms(story.centroid))

    def _top_terms(self, centroid: Vector) -> tuple[str, ...]:
        chosen: list[str] = []
        covered: set[str] = set()
        for term, _ in sorted(centroid.items(), key=lambda kv: (-kv[1], kv[0])):
            words = set(term.split())
            if words <= covered:
                continue
            if len(words) == 1 and any(term in c.split() for c in chosen):
                continue
            chosen.append(term)
            covered |= words
            if len(chosen) == self.config.terms:
                break
        return tuple(chosen)
