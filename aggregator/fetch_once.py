"""Fetch one URL now, outside a poll: for `feeds add` (is it a feed? which one does this page
advertise?) and `feeds import`."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .config import PollingConfig
from .discover import advertised_feeds
from .errors import FeedError, FetchError, NotAFeedError, UsageError
from .fetch import fetch, fetch_limits, fetch_session
from .models import FetchResult
from .workers import read_document

__all__ = ["FoundFeed", "check_feed", "fetch_document", "find_feed", "web_candidates"]


@dataclass(frozen=True)
class FoundFeed:
    """The feed `feeds add` found: its URL, its own title, how many items it has now."""

    url: str
    title: str | None
    entries: int
    page: str | None = None  # the web page that advertised it, when one did


def check_feed(url: str, polling: PollingConfig) -> tuple[str | None, int]:
    """Fetch and parse ``url`` once (for `feeds add`): its title and entry count, or a FeedError."""
    found = _read(url, _fetch_once(url, polling))
    return found.title, found.entries


def find_feed(candidates: list[str], polling: PollingConfig, *, pick: int | None) -> FoundFeed:
    """The feed at the first of ``candidates`` that answers (https before http, for an address
    typed without a scheme), or the one the web page there advertises.

    A page advertising several is a UsageError listing them, unless ``pick`` (1-based) chooses.
    """
    result, url = _first_answer(candidates, polling)
    try:
        return _read(url, result)
    except NotAFeedError as e:
        offered = advertised_feeds(result.body or b"", result.final_url or url)
        if not offered:
            raise NotAFeedError(url, f"{e.message}; and the page advertises no feed") from None
    if pick is None and len(offered) == 1:
        pick = 1
    if pick is None or not 1 <= pick <= len(offered):
        lines = [
            f"  {i}. {feed.url}  ({feed.kind}{': ' + feed.title if feed.title else ''})"
            for i, feed in enumerate(offered, start=1)
        ]
        asked = f"--pick {pick} is not one of them; " if pick is not None else ""
        raise UsageError(
            f"{url} is a web page that advertises {len(offered)} feeds; {asked}choose one with "
            "--pick N, or add its URL:\n" + "\n".join(lines)
        )
    chosen = offered[pick - 1].url
    found = _read(chosen, _fetch_once(chosen, polling))
    return FoundFeed(url=found.url, title=found.title, entries=found.entries, page=url)


def web_candidates(text: str) -> list[str] | None:
    """``example.com/rss`` as the URLs to try, https first; None when ``text`` is a URL or a
    path (a file that exists, or one that looks like a file and not like a web address)."""
    if "://" in text or Path(text).expanduser().exists():
        return None
    host = text.split("/", 1)[0]
    if not re.fullmatch(r"(?:[\w-]+\.)+[a-zA-Z][\w-]*(?::\d{1,5})?|\d+(?:\.\d+){3}:\d{1,5}", host):
        return None
    if "/" not in text and re.search(r"\.(xml|rss|atom|json|rdf|ya?ml|opml)$", text, re.I):
        return None  # feed.xml: a file that is not there, not a host called feed.xml
    return [f"https://{text}", f"http://{text}"]


def fetch_document(url: str, polling: PollingConfig) -> bytes:
    """The bytes at ``url`` (a web URL, a file:// URL or a path), fetched once with our limits."""
    return _fetch_once(url, polling).body or b""


def _read(url: str, result: FetchResult) -> FoundFeed:
    document = read_document(url, result.body or b"", result.headers, datetime.now(UTC))
    return FoundFeed(url=url, title=document.title, entries=document.entries)


def _first_answer(candidates: list[str], polling: PollingConfig) -> tuple[FetchResult, str]:
    """The first candidate that answers; when none does, the first one's error."""
    first: FetchError | None = None
    for url in candidates:
        try:
            return _fetch_once(url, polling), url
        except FetchError as e:
            if e.status is not None:  # it answered, with an error: that is the answer
                raise
            first = first or e
    assert first is not None
    raise first


def _fetch_once(url: str, polling: PollingConfig) -> FetchResult:
    async def go() -> FetchResult:
        async with fetch_session(polling) as http:
            return await fetch(http, url, limits=fetch_limits(polling))

    result = asyncio.run(go())
    if result.body is None:  # pragma: no cover - no validators were sent
        raise FeedError(url, "the server sent no body")
    return result
