"""Story-making against the store: clustering, summaries, the user's corrections and mute rules.

Every way a story changes goes through here, and each ends the same way: the stories it touched
get their headline and key terms worked out again by the clusterer (`cluster.py`, pure) and
stored, with the figures the store keeps.

- **Clustering** places the articles no story holds yet, from what is stored rather than from a
  poll's list, so articles stored by a run that died before clustering are placed by the next.
- **Corrections** (merge, split, move) hold through later clustering. Clustering never splits a
  story, so a merge holds by itself. A split or a move keeps the stories involved apart for good
  (the ``stories_apart`` table): a later article close to both joins one of them and never merges
  them back.
- **Mute rules** flag the articles that match the config's ``mute:`` terms and feeds. A muted
  article stays where clustering put it, so a story keeps its id and unmuting gives it back
  whole, but it counts for nothing: not in a story's size, sources, headline or articles, not in
  `stories`, `articles` or a digest. Only `search` still finds it, marked muted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from .cluster import STORY_MEMORY, StoryClusterer, reach
from .config import Config, MuteConfig
from .errors import CorrectionError
from .listing import get_story
from .models import ClusterDoc, StoryView
from .store import Store, open_store
from .summary import story_summaries

__all__ = [
    "apply_mute",
    "cluster_database",
    "cluster_pending",
    "merge_stories",
    "move_articles",
    "mute_query",
    "rules_key",
    "split_story",
    "summarise",
]

# An article older than this before the newest one being placed starts its own story instead
# of making clustering load every story since its date (a feed's archive item, say).
CATCH_UP = timedelta(days=7)


# --- clustering -------------------------------------------------------------------------------


def cluster_database(config: Config, now: datetime) -> int:
    """``cluster_pending`` on the configured database, opened here: for a worker process."""
    store = open_store(config.database)
    try:
        return cluster_pending(store, config, now=now)
    finally:
        store.close()


def cluster_pending(store: Store, config: Config, *, now: datetime) -> int:
    """Place every article not yet in a story; return how many stories changed.

    Reading and writing are one transaction, so two runs never place the same articles twice.
    """
    with store.transaction():
        if store.get_meta("recount_terms"):
            counter = StoryClusterer(config.clustering)
            store.replace_term_frequencies(counter.story_frequencies(store.clustered()))
        # Before placing: a story's figures and headline leave out what is muted.
        apply_mute(store, config, now=now)
        pending = store.unclustered()
        if not pending:
            return 0
        start = max(pending[0].published, pending[-1].published - CATCH_UP)
        settings = config.clustering
        active = store.active(
            since=start - reach(settings),
            latest=STORY_MEMORY,
            began_since=pending[0].published - settings.max_span,
        )
        clusterer = _clusterer(store, config, [*pending, *active], apart=store.stories_apart())
        clusterer.load(active, began=store.stories_began({d.story for d in active if d.story}))
        placed = [clusterer.add(doc) for doc in pending]
        # Stories merged later in the run take along the articles placed in them earlier.
        placements = [clusterer.placement(p) for p in placed]
        new_stories = {
            p.placed_in: p.article for p in placements if p.new_story and p.story == p.placed_in
        }
        resolve = clusterer.resolve
        merged = [(resolve(s), absorbed) for s, absorbed in clusterer.merges if absorbed > 0]
        summaries = [clusterer.summary(key) for key in sorted(clusterer.touched)]
        ids = store.save_clustering(
            placements=placements,
            new_story_keys=new_stories,
            merged=merged,
            stories=summaries,
            df_increments=dict(clusterer.df_increments),
            documents=clusterer.documents,
            now=now,
        )
        changed = [ids.get(story.id, story.id) for story in summaries]
        store.save_summaries(story_summaries(store.summary_sources(changed, latest=STORY_MEMORY)))
    return len(summaries)


def summarise(store: Store, config: Config, story_ids: Iterable[int], now: datetime) -> None:
    """Work out again the headline and key terms of stories changed outside clustering."""
    ids = sorted(set(story_ids))
    docs = store.story_docs(ids)
    clusterer = _clusterer(store, config, docs)
    clusterer.load(docs)
    store.refresh_stories([clusterer.summary(i) for i in ids if i in clusterer.stories], now)
    store.save_summaries(story_summaries(store.summary_sources(ids, latest=STORY_MEMORY)))


def _clusterer(
    store: Store,
    config: Config,
    docs: Sequence[ClusterDoc],
    *,
    apart: Iterable[tuple[int, int]] = (),
) -> StoryClusterer:
    """A clusterer that knows the stored frequencies of the terms in ``docs``."""
    clusterer = StoryClusterer(config.clustering, apart=apart)
    vocabulary = clusterer.vocabulary(docs)
    clusterer.use_frequencies(store.document_frequencies(vocabulary), store.document_count())
    return clusterer


# --- corrections ------------------------------------------------------------------------------


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
    return get_story(store, survivor, now=now, recent=config.clustering.quiet_after)


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
    return get_story(store, new, now=now, recent=config.clustering.quiet_after)


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
        apart = {pair for pair in store.stories_apart() if target in pair}
        for origin in sorted(left):
            emptied = set(store.story_articles(origin)) <= set(moving)
            if (
                emptied
                and (min(origin, target), max(origin, target)) in apart
                and store.made_by_user(origin)
            ):
                # A story split off the target would become its alias: the split undone as a
                # merge, which a split says never happens. Only the user's merge may do that.
                raise CorrectionError(
                    f"story {origin} was split off story {target} and is kept apart from it; "
                    f"moving all its articles there would merge the two. To undo the split, "
                    f"merge them: aggregator story merge {target} {origin}"
                )
        store.move_articles(moving, to=target, now=now)
        # A story the move emptied is gone (an alias of the target now).
        changed = [target, *(s for s in left if store.resolve_story(s) == s)]
        summarise(store, config, changed, now)
    return get_story(store, target, now=now, recent=config.clustering.quiet_after)


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


# --- mute rules -------------------------------------------------------------------------------


def mute_query(terms: Sequence[str]) -> str | None:
    """An FTS5 query matching any of the terms, each a phrase (its words side by side)."""
    phrases = ['"' + " ".join(term.split()).replace('"', '""') + '"' for term in terms]
    return " OR ".join(phrases) or None


def rules_key(mute: MuteConfig) -> str:
    """The same text for the same rules however they are written (order, case, spacing)."""
    if not mute.terms and not mute.feeds:
        return ""
    # lower(), not casefold(): the index folds case but keeps ß, so "Straße" is not "strasse".
    terms = sorted({" ".join(t.lower().split()) for t in mute.terms})
    return json.dumps({"terms": terms, "feeds": sorted(set(mute.feeds))}, ensure_ascii=False)


def apply_mute(store: Store, config: Config, *, now: datetime) -> int:
    """Bring the stored articles in line with the mute rules; return how many stories changed.

    Cheap when nothing changed: one query, and no write lock for a command that only reads.
    Stories that gained or lost a muted article get their figures, headline and key terms worked
    out again, the way clustering does.
    """
    mute, key = config.mute, rules_key(config.mute)
    if store.mute_is_current(key):
        return 0
    with store.transaction():  # flags and figures together, or neither
        changed = store.mute_articles(mute_query(mute.terms), mute.feeds, rules=key)
        if changed:
            summarise(store, config, changed, now)
    return len(changed)
