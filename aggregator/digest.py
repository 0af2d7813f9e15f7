"""What goes into a digest, and when one is due: pure decisions, no I/O.

A digest shows each reader the stories that are new to them, or that have gained sources since
their last digest showed them. Stories come from the reader's window: everything since their
last digest, and at least ``digest.since`` (24 h) back. The best ``digest.limit`` are shown in
full and the rest in a compact list, one line each: every story chosen is shown, so none is
left over for a mail of its own.

With ``digest.at`` a digest is due at those times of day: a run owes one when a time has passed
since the last time it handled. Only the latest time counts, so a machine that slept through
several sends one digest, once; a due digest that finds nothing new is handled all the same.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo

from .config import DEFAULT_SUBJECT
from .models import Digest, DigestEntry, StoryView
from .render import plural

__all__ = [
    "choose_entries",
    "digest_window",
    "latest_slot",
    "next_slot",
    "one_line",
    "split_entries",
    "subject_line",
]

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


def split_entries(
    entries: Sequence[DigestEntry], limit: int
) -> tuple[tuple[DigestEntry, ...], tuple[DigestEntry, ...]]:
    """The first ``limit`` entries, shown in full, and the rest, shown one line each
    (``limit`` 0: all in full)."""
    if not limit:
        return tuple(entries), ()
    return tuple(entries[:limit]), tuple(entries[limit:])


def _slots(
    day_offsets: Sequence[int], now: datetime, times: Sequence[time], zone: tzinfo
) -> Iterator[datetime]:
    today = now.astimezone(zone).date()
    for offset in day_offsets:
        day = today + timedelta(days=offset)
        for at in times:
            yield datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def latest_slot(now: datetime, times: Sequence[time], zone: tzinfo) -> datetime | None:
    """The last time a digest was due at or before ``now`` (in UTC); None without times."""
    return max((s for s in _slots((-1, 0), now, times, zone) if s <= now), default=None)


def next_slot(now: datetime, times: Sequence[time], zone: tzinfo) -> datetime | None:
    """The next time a digest is due after ``now``, in ``zone``; None without times."""
    found = min((s for s in _slots((0, 1, 2), now, times, zone) if s > now), default=None)
    return found.astimezone(zone) if found else None


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
    count = len(digest.shown)
    grown = sum(1 for entry in digest.shown if entry.grown)
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
