"""Mute rules: keep what matches the config's `mute:` terms and feeds out of stories and digests.

A muted article stays where clustering put it, so a story keeps its id and unmuting gives it
back whole, but it counts for nothing: not in a story's size, sources, headline or articles,
not in `stories`, `articles` or a digest. Only `search` still finds it, marked muted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from .config import Config, MuteConfig
from .store import Store

__all__ = ["apply_mute", "mute_query", "rules_key"]


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

    Cheap when nothing changed: one query. Stories that gained or lost a muted article get their
    figures, headline and key terms worked out again, the way clustering does.
    """
    mute, key = config.mute, rules_key(config.mute)
    if store.mute_is_current(key):
        return 0  # the usual case: no write lock for a command that only reads
    with store.transaction():  # flags and figures together, or neither
        changed = store.mute_articles(mute_query(mute.terms), mute.feeds, rules=key)
        if changed:
            from .corrections import summarise  # the clusterer: only when rules changed

            summarise(store, config, changed, now)
    return len(changed)
