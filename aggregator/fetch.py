"""Fetch one feed's bytes: conditional GET, redirects, a total deadline and a decoded-byte cap.

The HTTP client is passed in, so a poll reuses connections and tests can point it anywhere.
Local paths and ``file://`` URLs are read from disk, for offline use.
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from .errors import FetchError, GoneError, RetryLaterError
from .models import FetchResult

__all__ = ["FetchLimits", "fetch", "make_client", "parse_retry_after"]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}


@dataclass(frozen=True)
class FetchLimits:
    """The bounds of one request."""

    timeout: float = 30.0  # total seconds for the whole exchange, redirects and body included
    max_bytes: int = 15 * 1024 * 1024  # decoded bytes, so a gzip bomb stops at the cap
    max_redirects: int = 5


def make_client(*, user_agent: str, concurrency: int, timeout: float) -> httpx.AsyncClient:
    """One client for a whole poll, so connections are reused."""
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent, "Accept": ACCEPT},
        follow_redirects=False,  # we follow by hand: to cap hops, name the chain, spot 301s
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


def is_local(url: str) -> bool:
    """A path or file:// URL, read from disk."""
    return url.startswith("file://") or "://" not in url


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits | None = None,
    now: datetime | None = None,
) -> FetchResult:
    """Fetch ``url``; raise a ``FetchError`` subclass for every failure a feed can have."""
    limits = limits or FetchLimits()
    if is_local(url):
        return _read_local(url, limits)
    try:
        async with asyncio.timeout(limits.timeout):
            return await _fetch_http(client, url, etag, last_modified, limits, now)
    except TimeoutError:
        raise FetchError(url, f"no complete answer within {limits.timeout:g} s") from None


async def _fetch_http(
    client: httpx.AsyncClient,
    url: str,
    etag: str | None,
    last_modified: str | None,
    limits: FetchLimits,
    now: datetime | None,
) -> FetchResult:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    chain = [url]
    current = url
    permanent: str | None = None
    still_permanent = True
    while True:
        scheme = urlsplit(current).scheme.lower()
        if scheme not in {"http", "https"}:
            raise FetchError(url, "refused a redirect to a non-web URL: " + " -> ".join(chain))
        try:
            async with client.stream("GET", current, headers=headers) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    target = urljoin(current, response.headers["location"].strip())
                    if still_permanent and response.status_code in _PERMANENT:
                        permanent = target
                    else:
                        still_permanent = False
                    chain.append(target)
                    if target in chain[:-1]:
                        raise FetchError(url, "redirect loop: " + " -> ".join(chain))
                    if len(chain) - 1 > limits.max_redirects:
                        raise FetchError(
                            url,
                            f"more than {limits.max_redirects} redirects: " + " -> ".join(chain),
                        )
                    current = target
                    continue
                _raise_for_status(url, response, now)
                body = None
                if response.status_code != 304:
                    body = await _read_capped(url, response, limits.max_bytes)
                return FetchResult(
                    url=url,
                    final_url=str(response.url),
                    status=response.status_code,
                    body=body,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    permanent_redirect=permanent,
                )
        except httpx.DecodingError as e:
            raise FetchError(url, f"the body could not be decompressed: {e}") from e
        except httpx.TooManyRedirects as e:  # pragma: no cover - we follow by hand
            raise FetchError(url, str(e)) from e
        except httpx.InvalidURL as e:
            raise FetchError(url, f"invalid URL: {e}") from e
        except httpx.HTTPError as e:
            raise FetchError(url, _describe(e)) from e


def _raise_for_status(url: str, response: httpx.Response, now: datetime | None) -> None:
    status = response.status_code
    if status == 200 or status == 304 or (200 <= status < 300 and status != 204):
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status == 410:
        raise GoneError(url, f"{reason}: the feed is gone", status=status)
    if status in (429, 503):
        when = parse_retry_after(response.headers.get("retry-after"), now=now)
        raise RetryLaterError(url, reason, status=status, retry_after=when)
    raise FetchError(url, reason, status=status)


async def _read_capped(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    plain = "content-encoding" not in response.headers
    if plain and declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body of {int(declared):,} bytes is over the cap of {max_bytes:,}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded bytes: the cap also stops gzip bombs
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(url, f"body is over the cap of {max_bytes:,} decoded bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_local(url: str, limits: FetchLimits) -> FetchResult:
    path = Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise FetchError(url, f"file of {size:,} bytes is over the cap of {limits.max_bytes:,}")
        body = path.read_bytes()
    except FileNotFoundError:
        raise FetchError(url, "no such file") from None
    except IsADirectoryError:
        raise FetchError(url, "is a directory, not a feed file") from None
    except OSError as e:
        raise FetchError(url, f"cannot read: {e.strerror or e}") from e
    return FetchResult(
        url=url, final_url=url, status=200, body=body, headers={}, etag=None, last_modified=None
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unparseable."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Bounded here so an absurd number cannot overflow; the schedule caps it further.
        return now + timedelta(seconds=min(int(value), 10 * 365 * 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _describe(error: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "the server broke the HTTP protocol",
    }
    kind = kinds.get(type(error), type(error).__name__)
    detail = str(error)
    return f"{kind}: {detail}" if detail else kind
