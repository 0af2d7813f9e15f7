"""Keeping the database bounded: prune what is older than ``database.keep``, give the space
back, and say what is stored.

A prune removes articles first seen more than ``keep`` ago, saved ones never, a batch at a
time: each batch is one short write transaction, sized so that it holds the lock for about a
quarter of a second (a poll or a reader waiting on the database waits that long at most). Then
an incremental vacuum gives the freed pages back, again in steps, and now and then the search
index is merged into one segment, in steps too. `poll` and `run` prune at most once a day.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .models import PruneReport, iso
from .store import Store
from .store.retention import SpaceFigures

__all__ = [
    "PRUNE_EVERY",
    "DatabaseStats",
    "database_stats",
    "next_batch",
    "prune",
    "prune_if_due",
]

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(days=1)
OPTIMIZE_EVERY = timedelta(days=7)  # a full merge of the search index
# A batch's lock is aimed at LOCK_TARGET; the batch size follows what the last one took.
LOCK_TARGET = 0.25
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 500, 20, 20_000
VACUUM_PAGES = 2_000  # pages (8 MB of 4 KiB pages) a vacuum step gives back
MERGE_PAGES = 1_000  # pages a step of the search index's merge writes


@dataclass(frozen=True)
class DatabaseStats:
    """What `db stats` shows: the database's size and contents, and the next prune."""

    space: SpaceFigures
    keep: timedelta | None
    last_prune: datetime | None
    next_prune: PruneReport | None  # a dry run: what it would remove now; None with keep: all

    def to_json(self) -> dict[str, Any]:
        space = self.space
        return {
            "file_bytes": space.file_bytes,
            "free_bytes": space.free_bytes,
            "articles": space.articles,
            "saved": space.saved,
            "stories": space.stories,
            "seen_records": space.seen_records,
            "oldest_article": iso(space.oldest_article),
            "auto_vacuum": space.auto_vacuum,
            "keep_days": self.keep.total_seconds() / 86400 if self.keep else None,
            "last_prune": iso(self.last_prune),
            "next_prune": self.next_prune.to_json() if self.next_prune else None,
        }


def next_batch(size: int, seconds: float) -> int:
    """The next batch's size, from how long one of ``size`` articles held the lock."""
    if seconds <= 0:
        return min(size * 2, MAX_BATCH)
    scaled = int(size * LOCK_TARGET / seconds)
    # At most double at a time: a batch can cost more than the last (bigger stories, say).
    return max(MIN_BATCH, min(scaled, size * 2, MAX_BATCH))


def prune(store: Store, keep: timedelta, now: datetime, *, dry_run: bool = False) -> PruneReport:
    """Remove the articles first seen before ``now - keep`` that are not saved, and what hangs
    on them; with ``dry_run``, only count them."""
    cutoff = now - keep
    if dry_run:
        articles, stories = store.prune_preview(cutoff)
        return PruneReport(cutoff=cutoff, articles=articles, stories=stories, dry_run=True)
    started = time.perf_counter()
    articles = stories = seen = batches = 0
    longest = 0.0
    size = FIRST_BATCH
    while True:
        batch = store.prune_batch(cutoff, size, now)
        longest = max(longest, batch.seconds)
        if not batch.articles:
            break
        batches += 1
        articles += batch.articles
        stories += batch.stories
        seen += batch.seen_records
        size = next_batch(size, batch.seconds)
    while True:  # also what a prune killed half-way left to count
        left, seconds = store.recount_stories(LOCK_TARGET)
        longest = max(longest, seconds)
        if not left:
            break
    # The search index is merged first, so the pages the merge frees go back with the rest.
    _, optimized_at = store.last_prune()
    optimize = articles > 0 and (optimized_at is None or now - optimized_at >= OPTIMIZE_EVERY)
    merge_lock = _merge_search_index(store) if optimize else 0.0
    freed, vacuum_lock = _give_back_space(store)
    store.pruned(now, optimized=optimize)
    report = PruneReport(
        cutoff=cutoff,
        articles=articles,
        stories=stories,
        seen_records=seen,
        batches=batches,
        longest_lock=max(longest, vacuum_lock, merge_lock),
        seconds=time.perf_counter() - started,
        freed_bytes=freed,
    )
    log.info(
        "pruned %d articles and %d stories first seen before %s in %d batches "
        "(longest lock %.3f s); %d bytes given back",
        articles,
        stories,
        cutoff,
        batches,
        report.longest_lock,
        freed,
    )
    return report


def prune_if_due(store: Store, keep: timedelta | None, now: datetime) -> PruneReport | None:
    """The day's prune, for `poll` and `run`: at most once every PRUNE_EVERY, never with
    ``keep: all``. A prune that did not finish (a crash) is due again at once."""
    if keep is None:
        return None
    last, _ = store.last_prune()
    if last is not None and now - last < PRUNE_EVERY:
        return None
    return prune(store, keep, now)


def _give_back_space(store: Store) -> tuple[int, float]:
    """The free pages back to the file system, in steps; the bytes freed and the longest step.

    A database made before auto_vacuum is rebuilt once instead (see store.retention)."""
    if store.needs_vacuum_conversion():
        before = store.space_figures().file_bytes
        log.info("rebuilding the database once so that pruning can shrink it (VACUUM)")
        if not store.convert_to_incremental():
            return 0, 0.0
        store.checkpoint()
        return max(0, before - store.space_figures().file_bytes), 0.0
    freed, longest = 0, 0.0
    while True:
        step, seconds = store.vacuum_step(VACUUM_PAGES)
        longest = max(longest, seconds)
        if not step:
            break
        freed += step
    store.checkpoint()
    return freed, longest


def _merge_search_index(store: Store) -> float:
    """Merge the search index into one segment (FTS5's optimize), a step at a time; the
    longest step. Deleted rows leave markers in the index until a merge drops them."""
    longest = 0.0
    worked = True
    while worked:
        worked, seconds = store.merge_search_index(MERGE_PAGES)
        longest = max(longest, seconds)
    return longest


def database_stats(store: Store, keep: timedelta | None, now: datetime) -> DatabaseStats:
    """The database's size and contents, and what a prune would remove now."""
    last, _ = store.last_prune()
    return DatabaseStats(
        space=store.space_figures(),
        keep=keep,
        last_prune=last,
        next_prune=prune(store, keep, now, dry_run=True) if keep is not None else None,
    )
