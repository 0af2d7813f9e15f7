"""Fetch one URL now, outside a poll: for `feeds add` (is it a feed?) and `feeds import`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from .config import PollingConfig
from .errors import FeedError
from .fetch import fetch, fetch_limits, fetch_session
from .models import FetchResult
from .workers import read_document

__all__ = ["check_feed", "fetch_document"]


def check_feed(url: str, polling: PollingConfig) -> tuple[str | None, int]:
    """Fetch and parse ``url`` once (for `feeds add`): its title and entry count, or a FeedError."""
    result = _fetch_once(url, polling)
    document = read_document(url, result.body or b"", result.headers, datetime.now(UTC))
    return document.title, document.entries


def fetch_document(url: str, polling: PollingConfig) -> bytes:
    """The bytes at ``url`` (a web URL, a file:// URL or a path), fetched once with our limits."""
    return _fetch_once(url, polling).body or b""


def _fetch_once(url: str, polling: PollingConfig) -> FetchResult:
    async def go() -> FetchResult:
        async with fetch_session(polling) as http:
            return await fetch(http, url, limits=fetch_limits(polling))

    result = asyncio.run(go())
    if result.body is None:  # pragma: no cover - no validators were sent
        raise FeedError(url, "the server sent no body")
    return result
