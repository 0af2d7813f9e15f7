"""The user's corrections to stories: merge, split and move, kept through later clustering.

Clustering never splits a story, so a merge holds by itself. A split or a move keeps the
stories involved apart for good (the ``stories_apart`` table): a later article close to both
joins one of them and never merges them back. Each correction then recomputes the headline and
key terms of the stories it changed, the way clustering does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from .cluster import StoryClusterer
from .config import Config
from .errors import CorrectionError
from .models import StoredStory, StoryView
from .store import Store

__all__ = ["merge_stories", "move_articles", "split_story", "summarise"]


def merge_stories(
    store: Store, config: Config, story_ids: Sequence[int], *, now: datetime
) -> StoryView:
    """Make the given stories one; the oldest keeps its id and the others become its aliases."""
    with store.transaction():
        ids = list(dict.fromkeys(store.resolve_story(i) for i in story_ids))
        if len(ids) < 2:
            raise CorrectionError(f"stories {_listed(story_ids)} are already one story ({ids[0]})")
        began: dict[int, datetime] = {}
        for doc in store.story_docs(ids):  # in time order: the first seen is the earliest
            began.setdefault(doc.story or 0, doc.published)
        survivor = min(ids, key=lambda i: (began[i], i))
        store.merge_stories(survivor, [i for i in ids if i != survivor])
        summarise(store, config, [survivor], now)
    return store.story(survivor, now=now, recent=config.clustering.quiet_after)


def split_story(
    store: Store, config: Config, story_id: int, article_ids: Sequence[int], *, now: datetime
) -> StoryView:
    """Take articles out of a story into a new one, which clustering keeps apart from it."""
    with store.transaction():
        story = store.resolve_story(story_id)
        placed = store.stories_of(article_ids)
        strays = [str(a) for a, s in placed.items() if s != story]
        if strays:
            raise CorrectionError(f"article {', '.join(strays)} is not in story {story_id}")
        docs = store.story_docs([story])  # in time order: the earliest moved begins the new one
        if all(doc.key in placed for doc in docs):
            raise CorrectionError(
                f"that is every article of story {story_id}: leave at least one behind"
            )
        moving = [doc.key for doc in docs if doc.key in placed]
        new = store.move_articles(moving, to=None, now=now)
        summarise(store, config, [story, new], now)
    return store.story(new, now=now, recent=config.clustering.quiet_after)


def move_articles(
    store: Store, config: Config, article_ids: Sequence[int], *, to: int, now: datetime
) -> StoryView:
    """Put articles in another story; the stories they left are kept apart from it."""
    with store.transaction():
        target = store.resolve_story(to)
        placed = store.stories_of(article_ids)
        unplaced = [str(a) for a, s in placed.items() if s is None]
        if unplaced:
            # Clustering has not seen it yet; the next poll places it (then move it).
            raise CorrectionError(f"article {', '.join(unplaced)} is not in a story yet")
        moving = [a for a, s in placed.items() if s != target]
        if not moving:
            raise CorrectionError(f"article {_listed(article_ids)} is already in story {target}")
        left = {s for a, s in placed.items() if s is not None and s != target}
        store.move_articles(moving, to=target, now=now)
        # A story the move emptied is gone (an alias of the target now).
        changed = [target, *(s for s in left if _exists(store, s))]
        summarise(store, config, changed, now)
    return store.story(target, now=now, recent=config.clustering.quiet_after)


def summarise(store: Store, config: Config, story_ids: Iterable[int], now: datetime) -> None:
    """Headline and key terms of each story from its articles, with the stored frequencies."""
    ids = sorted(set(story_ids))
    docs = store.story_docs(ids)
    clusterer = StoryClusterer(config.clustering)
    vocabulary = clusterer.vocabulary(docs)
    clusterer.use_frequencies(store.document_frequencies(vocabulary), store.document_count())
    clusterer.load(docs)
    summaries = [clusterer.summary(i) for i in ids if i in clusterer.stories]
    store.refresh_stories([StoredStory(s.story, s.title, s.terms) for s in summaries], now)


def _exists(store: Store, story_id: int) -> bool:
    return store.resolve_story(story_id) == story_id


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)
