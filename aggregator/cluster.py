"""Group articles into stories, online, with TF-IDF.

Pure: the caller hands in the active stories and the running term frequencies, then adds
articles one at a time in time order; nothing here touches the database.

Method, and why:

- Each article becomes a TF-IDF vector over single words (scikit-learn's analyzer, English stop
  words removed; titles weigh more than summaries). Headlines are a handful of words, so word
  pairs mostly add terms that no other headline shares: they dilute the vector and drag every
  similarity towards zero. IDF comes from running frequencies, so it follows the stream
  instead of a vocabulary fitted once. A term counts once per story that uses it, not once per
  article: a story's own name, repeated by hundreds of its articles, would otherwise turn into
  a common word and weigh less than the generic words ("good", "review") that its headlines
  share with everything else.
- An article joins the story it is most similar to, when that similarity reaches ``threshold``;
  otherwise it begins a new story. The similarity is the cosine with the story's centroid (the
  sum of its members' vectors), less a cost for how long the story has been quiet: time is
  evidence, not a wall. The cost grows by ``quiet_cost`` each time the quiet time doubles,
  counted in hours (``quiet_cost × log2(1 + hours quiet)``: 0.08 after 1 h, 0.16 after 3 h, 0.27
  after 9 h, 0.37 after 23 h with the defaults). So a headline that shares only generic words
  ("market", "app", "review") with a story that went quiet hours ago does not join it, while a
  close report on the same event the next morning still does. Subtracting, rather than
  multiplying the cosine by a decay, keeps a long-quiet story within reach of strong evidence
  only: a decay that lets a 20 h gap through lets weak matches through with it. A story takes
  nothing once it has been quiet for ``window`` (a day), nor once ``max_span`` has passed since
  its first article (7 days: an event, not a topic that runs for months); a story that keeps
  receiving articles stays fully reachable. Only stories within reach are loaded.
- Cosine alone lets one shared word carry a short headline into a story ("Monday", "review",
  "Bell"). So an article that shares a single word with a story (numbers do not count) joins
  it only with a similarity of ``one_word`` (0.40), where two shared words need 0.14. A common
  word weighs little (its IDF is low), so a headline of several words that shares only it
  stays out however recent the story: "Apple" in a story on the next iPhone. A story's rare
  name in a short headline gets there ("First hours with Titanfall"): follow-ups that name
  only the story are a large share of what single-pass clustering otherwise splits off. The
  price is a headline of one or two words that happens to be a story's name ("Which Mac?" in
  a story on Freddie Mac); docs/stories.md gives what it costs on the distractors.
- Single-pass clustering splits a story when its first headlines have little in common: two
  fragments grow side by side. When one article is close to several active stories, at least
  ``merge_threshold`` (stricter than ``threshold``) to each, and those stories agree with each
  other (their centroids' cosine reaches ``merge_agreement``), they have converged and are
  merged; the oldest keeps its key, and ``merges`` records (survivor, absorbed) so that the
  caller can move the absorbed story's articles. ``resolve`` maps any key handed out to the
  story it now belongs to. The agreement check is what lets stories stay open for a day: one
  headline that names two subjects ("Titanfall" and "Game of Thrones" in a round-up) is close to
  both of their stories, but the stories themselves share little, so they stay apart. A story of
  a single article is not asked to agree: its centroid is one headline, too little to agree
  with anything, and fragments that begin as one article are what merging is for (asking it
  cost 0.006 of B3-F1 on the dev set's own timing). The price: a round-up that catches a story
  at its first article can still merge it into another.
- A user's corrections hold: stories the user split apart (``apart``) are never merged again,
  whatever later articles suggest.
- Cost per article is bounded by the active stories that share its terms: candidates come from
  an inverted index over active stories only, the centroid norm is updated incrementally (so a
  large story costs no more than a small one), and ``expire`` pops stories off a heap instead of
  scanning them all. A merge costs the absorbed story's size, but each one retires a story.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from .config import ClusteringConfig
from .models import ClusterDoc, StoredStory, StoryPlacement

__all__ = ["STORY_MEMORY", "StoryClusterer", "quiet_cost", "reach"]

Vector = dict[str, float]

# A story is matched, headlined and summarised on its latest this many articles: what it is
# about now. A story that runs for months (a war, a season) then costs a poll what a story of
# a few days does; no story of the labelled sets comes near it.
STORY_MEMORY = 500

# How many shared terms a placement records.
_SHARED_TERMS = 5


class _Match(NamedTuple):
    """How close an article is to one story: what decides, and what it is made of."""

    score: float  # the cosine less the quiet cost
    cosine: float
    quiet_hours: float


@dataclass
class _Story:
    key: int
    first: datetime
    last: datetime
    centroid: Vector = field(default_factory=dict)
    norm: float = 0.0
    members: list[tuple[ClusterDoc, Vector]] = field(default_factory=list)

    def add(self, doc: ClusterDoc, vector: Vector) -> None:
        self._add_weights(vector)
        self.members.append((doc, vector))
        self.first = min(self.first, doc.published)
        self.last = max(self.last, doc.published)

    def absorb(self, other: _Story) -> None:
        self._add_weights(other.centroid)
        self.members.extend(other.members)
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)

    def _add_weights(self, weights: Vector) -> None:
        # Only the terms that change are touched, so the cost does not grow with the story.
        squared = self.norm * self.norm
        for term, weight in weights.items():
            old = self.centroid.get(term, 0.0)
            self.centroid[term] = old + weight
            squared += weight * (2.0 * old + weight)
        self.norm = math.sqrt(max(squared, 0.0))


def quiet_cost(config: ClusteringConfig, quiet: timedelta) -> float:
    """What ``quiet`` time since a story's latest article takes off a newcomer's similarity."""
    hours = max(quiet.total_seconds(), 0.0) / 3600.0
    return config.quiet_cost * math.log2(1.0 + hours)


def reach(config: ClusteringConfig) -> timedelta:
    """How long after its latest article a story can still take one.

    A cosine is at most 1, so once the quiet cost alone brings 1 under ``threshold`` no
    article can join; ``window`` caps it.
    """
    window_hours = config.window.total_seconds() / 3600.0
    if config.quiet_cost <= 0:
        return config.window
    exponent = (1.0 - config.threshold) / config.quiet_cost
    if exponent >= math.log2(window_hours + 1.0):
        return config.window
    return timedelta(hours=2.0**exponent - 1.0)


@cache
def _analyzer() -> Callable[[str], list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: only when clustering

    analyzer: Callable[[str], list[str]] = TfidfVectorizer(
        stop_words="english", strip_accents="unicode", lowercase=True
    ).build_analyzer()
    return analyzer


def prepare() -> None:
    """Load scikit-learn now rather than at the first article (half a second of imports).

    A poll calls it from a thread once it knows there will be something to cluster, so the
    import overlaps with waiting on the network.
    """
    _analyzer()


class StoryClusterer:
    """Online single-pass clustering over a window of active stories."""

    def __init__(
        self,
        config: ClusteringConfig,
        *,
        document_frequencies: Mapping[str, int] | None = None,
        documents: int = 0,
        new_key: Callable[[ClusterDoc], int] | None = None,
        apart: Iterable[tuple[int, int]] = (),
    ) -> None:
        self.config = config
        self._reach = reach(config)
        self.df: dict[str, int] = dict(document_frequencies or {})
        self.documents = documents
        self.df_increments: dict[str, int] = defaultdict(int)
        self.stories: dict[int, _Story] = {}
        self.merges: list[tuple[int, int]] = []  # (survivor, absorbed), in the order they happened
        self._merged_into: dict[int, int] = {}
        self._index: dict[str, set[int]] = defaultdict(set)
        # (last article seen when pushed, key): expire() re-checks an entry before acting on it.
        self._expiry: list[tuple[datetime, int]] = []
        # New stories need a key before the store gives them an id: by default minus the
        # founding article's key, which cannot clash with a stored (positive) story id.
        self._new_key = new_key or (lambda doc: -doc.key)
        self.touched: set[int] = set()
        # Term counts of docs passed to vocabulary(), kept until they are loaded or added.
        self._counted: dict[int, dict[str, float]] = {}
        # Stories the user split apart: never merged, under whatever key they end up with.
        self._apart: dict[int, set[int]] = defaultdict(set)
        for a, b in apart:
            self._apart[a].add(b)
            self._apart[b].add(a)

    # -- terms and vectors --

    def terms(self, doc: ClusterDoc) -> dict[str, float]:
        """Raw term counts, titles weighted above summaries."""
        counts: dict[str, float] = defaultdict(float)
        for term in _analyzer()(doc.title):
            counts[term] += self.config.title_weight
        if self.config.summary_chars:
            for term in _analyzer()(doc.summary[: self.config.summary_chars]):
                counts[term] += 1.0
        return counts

    def vocabulary(self, docs: Iterable[ClusterDoc]) -> set[str]:
        """The terms of ``docs``, so their frequencies can be looked up before load and add.

        Each doc's counts are kept until it is loaded or added: no text is analysed twice.
        """
        found: set[str] = set()
        for doc in docs:
            counts = self._counted[doc.key] = self.terms(doc)
            found.update(counts)
        return found

    def use_frequencies(self, document_frequencies: Mapping[str, int], documents: int) -> None:
        """Take the running document frequencies (as stored) before loading and adding."""
        self.df.update(document_frequencies)
        self.documents = documents

    def story_frequencies(self, docs: Iterable[ClusterDoc]) -> dict[str, int]:
        """For each term, how many of the docs' stories use it: the counts from scratch."""
        used: dict[str, set[int]] = defaultdict(set)
        for doc in docs:
            for term in self.terms(doc):
                used[term].add(doc.story if doc.story is not None else -doc.key)
        return {term: len(stories) for term, stories in used.items()}

    def _counts(self, doc: ClusterDoc) -> dict[str, float]:
        counts = self._counted.pop(doc.key, None)
        return counts if counts is not None else self.terms(doc)

    def _vector(self, counts: Mapping[str, float]) -> Vector:
        n = self.documents
        vector = {
            t: (1.0 + math.log(c)) * (math.log((n + 1) / (self.df.get(t, 0) + 1)) + 1.0)
            for t, c in counts.items()
            if c > 0
        }
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {t: w / norm for t, w in vector.items()} if norm else {}

    def _count(self, vector: Vector, story: _Story) -> None:
        """Count the terms the article brings into ``story``, before it joins."""
        for term in vector:
            if term not in story.centroid:
                self.df[term] = self.df.get(term, 0) + 1
                self.df_increments[term] += 1

    # -- loading and adding --

    def load(self, docs: Iterable[ClusterDoc], began: Mapping[int, datetime] | None = None) -> None:
        """Take in the articles of active stories (already counted in the frequencies).

        ``began``: when each story began, for those loaded without their earliest articles
        (the store loads a story's latest STORY_MEMORY), so that ``max_span`` counts from it.
        """
        for doc in docs:
            if doc.story is None:
                continue
            vector = self._vector(self._counts(doc))
            story = self.stories.get(doc.story)
            if story is None:
                story = self._begin(doc.story, doc)
            story.add(doc, vector)
            self._index_terms(story.key, vector)
        for key, first in (began or {}).items():
            if key in self.stories:
                self.stories[key].first = min(self.stories[key].first, first)

    def add(self, doc: ClusterDoc) -> StoryPlacement:
        """Place one new article: join the best active story, or begin one.

        The placement's ``similarity`` is None for the article that began a story, and its
        ``shared_terms`` are the terms that carried the similarity first: what
        ``story --why`` shows. ``story`` and ``placed_in`` are the key it joined; a later merge
        in the same run moves it (see ``placement``).
        """
        self.documents += 1
        vector = self._vector(self._counts(doc))
        matches = self._scores(doc, vector)
        best = max(matches, key=lambda key: (matches[key].score, -key), default=None)
        if best is None:
            story = self._begin(self._new_key(doc), doc)
            placement = StoryPlacement(doc.key, story.key, story.key, None)
        else:
            threshold = self.config.merge_threshold
            close = [k for k, m in matches.items() if k != best and m.score >= threshold]
            close.sort(key=lambda k: (-matches[k].score, k))
            converged = self._mergeable(best, close)
            story = self._merge([best, *converged]) if converged else self.stories[best]
            shared = self._shared(vector, story)
            match = matches[best]
            placement = StoryPlacement(
                doc.key,
                story.key,
                story.key,
                round(match.score, 4),
                shared,
                round(match.cosine, 4),
                round(match.quiet_hours, 2),
            )
        self._count(vector, story)
        story.add(doc, vector)
        self._index_terms(story.key, vector)
        self.touched.add(story.key)
        return placement

    def placement(self, placed: StoryPlacement) -> StoryPlacement:
        """``placed`` as it stands now: in the story its first one was merged into, if any."""
        return replace(placed, story=self.resolve(placed.placed_in))

    def resolve(self, key: int) -> int:
        """The key of the story that ``key`` now belongs to (itself unless it was merged)."""
        while key in self._merged_into:
            key = self._merged_into[key]
        return key

    def _begin(self, key: int, doc: ClusterDoc) -> _Story:
        story = self.stories[key] = _Story(key, doc.published, doc.published)
        heapq.heappush(self._expiry, (doc.published, key))
        return story

    def _index_terms(self, key: int, vector: Vector) -> None:
        for term in vector:
            self._index[term].add(key)

    def _unindex(self, story: _Story) -> None:
        for term in story.centroid:
            keys = self._index.get(term)
            if keys is not None:
                keys.discard(story.key)
                if not keys:
                    del self._index[term]

    def _scores(self, doc: ClusterDoc, vector: Vector) -> dict[int, _Match]:
        """Centroid cosines less the quiet cost that reach the threshold, from coherent stories."""
        dots: dict[int, float] = defaultdict(float)
        for term, weight in vector.items():
            for key in self._index.get(term, ()):
                dots[key] += weight * self.stories[key].centroid[term]
        window, max_span = self._reach, self.config.max_span
        scores: dict[int, _Match] = {}
        threshold = self.config.threshold
        for key, dot in dots.items():
            story = self.stories[key]
            if dot < threshold * story.norm:  # the quiet cost only lowers a score: it cannot reach
                continue
            gap = max(doc.published - story.last, story.first - doc.published, timedelta(0))
            if gap > window or not story.norm or doc.published - story.first > max_span:
                continue
            cosine = dot / story.norm
            score = cosine - quiet_cost(self.config, gap)
            if score >= threshold and self._coherent(key, vector, score):
                scores[key] = _Match(score, cosine, gap.total_seconds() / 3600.0)
        return scores

    def _agree(self, a: int, b: int) -> bool:
        """Whether two stories that one article is close to are close to each other."""
        one, other = self.stories[a], self.stories[b]
        if len(one.members) < 2 or len(other.members) < 2:
            return True  # one headline is too little to agree with anything (see the docstring)
        if len(one.centroid) > len(other.centroid):
            one, other = other, one
        dot = sum(w * other.centroid.get(t, 0.0) for t, w in one.centroid.items())
        return dot >= self.config.merge_agreement * one.norm * other.norm

    def _coherent(self, key: int, vector: Vector, score: float) -> bool:
        """Whether the words shared with the story are evidence, not coincidence."""
        story = self.stories[key]
        # Numbers (dates, counts, episode numbers) coincide across unrelated headlines.
        shared = sum(1 for t in vector if t in story.centroid and not t.isdigit())
        return shared >= 2 or (shared == 1 and score >= self.config.one_word)

    def _shared(self, vector: Vector, story: _Story) -> tuple[str, ...]:
        """The terms the article shares with the story, heaviest contribution first."""
        shared = [(w * story.centroid[t], t) for t, w in vector.items() if t in story.centroid]
        shared.sort(key=lambda pair: (-pair[0], pair[1]))
        return tuple(term for _, term in shared[:_SHARED_TERMS])

    def _mergeable(self, best: int, converged: list[int]) -> list[int]:
        """The converged stories that may join ``best`` (and each other), most similar first."""
        chosen: list[int] = []
        barred = set(self._apart.get(best, ()))
        for key in converged:
            # Each must agree with ``best`` and with the others chosen.
            if key not in barred and all(self._agree(key, other) for other in (best, *chosen)):
                chosen.append(key)
                barred |= self._apart.get(key, set())
        return chosen

    def _merge(self, keys: list[int]) -> _Story:
        """Fold converged stories into the oldest of them, which keeps its key."""
        # Stored ids (positive) are older than keys begun in this run (negative, minus the
        # founding article's id, so the later story has the more negative key).
        stories = sorted(
            (self.stories[k] for k in keys), key=lambda s: (s.first, s.key < 0, abs(s.key))
        )
        survivor = stories[0]
        for story in stories[1:]:
            self._unindex(story)
            del self.stories[story.key]
            survivor.absorb(story)
            self._index_terms(survivor.key, story.centroid)
            self._merged_into[story.key] = survivor.key
            self.merges.append((survivor.key, story.key))
            for other in self._apart.pop(story.key, set()):
                self._apart[other].discard(story.key)
                self._apart[other].add(survivor.key)
                self._apart[survivor.key].add(other)
            self.touched.discard(story.key)
        return survivor

    def expire(self, before: datetime) -> None:
        """Forget stories whose last article is older than ``before`` (they can take no more)."""
        while self._expiry and self._expiry[0][0] < before:
            _, key = heapq.heappop(self._expiry)
            story = self.stories.get(key)
            if story is None:  # merged away, or already expired
                continue
            if story.last >= before:  # it took articles since this entry was pushed
                heapq.heappush(self._expiry, (story.last, key))
                continue
            del self.stories[key]
            self._unindex(story)

    # -- presenting --

    def summary(self, key: int) -> StoredStory:
        """The headline closest to the centroid, and the centroid's top terms."""
        story = self.stories[key]
        norm = story.norm or 1.0

        def closeness(member: tuple[ClusterDoc, Vector]) -> tuple[float, int]:
            doc, vector = member
            dot = sum(w * story.centroid.get(t, 0.0) for t, w in vector.items()) / norm
            return (dot, -doc.key)  # ties: the earliest article

        # A muted article's headline would bring back what the reader muted.
        shown = [m for m in story.members if not m[0].muted] or story.members
        headline = max(shown, key=closeness)[0].title
        return StoredStory(key, headline, self._top_terms(story.centroid))

    def _top_terms(self, centroid: Vector) -> tuple[str, ...]:
        ranked = sorted(centroid.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(term for term, _ in ranked[: self.config.terms])
