"""What a user may ask for, checked the same in the CLI and the reader: formats, windows, words.

Standard library only, so the CLI can import it at start-up and `--help` stays fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .errors import UsageError

__all__ = ["ALL_TIME", "DIGEST_FORMATS", "check_query", "cutoff"]

DIGEST_FORMATS = ("text", "markdown", "html")
ALL_TIME = timedelta.max  # --since all: no limit (``now - ALL_TIME`` would overflow)


def cutoff(now: datetime, window: timedelta | None) -> datetime | None:
    """The earliest time within ``window`` of ``now``; None (no limit) for None or ALL_TIME."""
    if window is None or window == ALL_TIME:
        return None
    return now - window


def check_query(query: str) -> str:
    """``query`` as given, once it is known to hold a word to search for.

    Checked before the store sees it, so an empty search is the user's mistake (exit 2), not
    a search that found nothing.
    """
    if not query.split():
        raise UsageError("search needs at least one word")
    return query
