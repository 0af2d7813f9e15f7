"""What goes into a digest: pure decisions, no I/O.

A digest shows each reader the stories that are new to them, or that have gained sources since
their last digest showed them. Stories come from the reader's window: everything since their
last digest, and at least ``digest.since`` (24 h) back, so a story the ``limit`` left out of one
digest gets another chance in the next while it is still fresh.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from .config import DEFAULT_SUBJECT
from .models import Digest, DigestEntry, StoryView
from .render import plural

__all__ = ["choose_entries", "digest_window", "one_line", "subject_line"]

PRINTED = "print"  # the recipient whose state printed digests keep
TOP_CHARS = 80  # the longest {top} headline in a subject


def digest_window(
    now: datetime, last_digest: datetime | None, since: timedelta | None
) -> datetime | None:
    """Where a reader's candidate stories start (None: all of them).

    ``since`` is ``digest.since``; None means all time.
    """
    floor = now - since if since is not None else None
    if last_digest is None or floor is None:
        return floor
    return min(last_digest, floor)


def choose_entries(
    candidates: Sequence[StoryView],
    shown: Mapping[int, int],
    *,
    limit: int,
    everything: bool = False,
) -> tuple[DigestEntry, ...]:
    """The best ``limit`` candidates (ranked best first) that are new to the reader or have
    more sources than ``shown`` says they had in the reader's last digest that showed them.

    With ``everything`` (an explicit ``--since``), shown stories come again too, still marked
    with what they have gained.
    """
    entries: list[DigestEntry] = []
    for story in candidates:
        earlier = shown.get(story.id)
        if earlier is not None and len(story.sources) <= earlier and not everything:
            continue
        entries.append(DigestEntry(story, earlier))
        if limit and len(entries) == limit:
            break
    return tuple(entries)


# Characters that end a header line, or could be read as doing so, by some mail software.
_BREAKS = {"\r", "\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def one_line(text: str) -> str:
    """``text`` with every line break and control character made a space, runs of space one."""
    cleaned = "".join(
        " " if ch in _BREAKS or unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
    )
    return " ".join(cleaned.split())


def _shorten(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    cut = text[: most - 1].rsplit(" ", 1)[0] if " " in text[: most - 1] else text[: most - 1]
    return cut.rstrip(" ,;:-") + "…"


def subject_line(template: str, digest: Digest) -> str:
    """The subject of a mailed digest: one line whatever the feeds put in their headlines.

    ``template`` was checked when the config was loaded (only SUBJECT_FIELDS).
    """
    count = len(digest.entries)
    grown = sum(1 for entry in digest.entries if entry.grown)
    top = _shorten(one_line(digest.entries[0].story.title), TOP_CHARS) if digest.entries else ""
    values = {
        "count": count,
        "stories": plural(count, "story"),
        "new": count - grown,
        "grown": grown,
        "top": top or "nothing new",
        "date": digest.generated_at.strftime("%Y-%m-%d"),
    }
    try:
        subject = string.Formatter().vformat(template, (), values)
    except (KeyError, IndexError, ValueError):  # only if the config check was bypassed
        subject = string.Formatter().vformat(DEFAULT_SUBJECT, (), values)
    return one_line(subject)
