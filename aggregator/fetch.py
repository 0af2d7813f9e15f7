"""Fetch one feed's bytes: conditional GET, redirects, a total deadline and a decoded-byte cap.

The HTTP session is passed in, so a poll reuses connections and tests can point it anywhere.
Local paths and ``file://`` URLs are read from disk, for offline use.

aiohttp does the HTTP. Its per-request cost is about a fifth of httpx's on this machine (0.2
against 1.05 ms of CPU, measured on the loopback farm of benchmarks/farm.py; see the README's
dependencies), and with a thousand feeds that CPU is what the poll waits on. Bodies are
decompressed here, with zlib's ``max_length``, so the byte cap holds however well a gzip bomb
compresses.
"""

from __future__ import annotations

import asyncio
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from yarl import URL

from .config import PollingConfig
from .errors import FetchError, GoneError, RetryLaterError
from .models import FetchResult
from .schedule import http_date

__all__ = [
    "FetchLimits",
    "fetch",
    "fetch_limits",
    "fetch_session",
    "make_session",
    "parse_retry_after",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    """The bounds of one request."""

    timeout: float = 30.0  # total seconds for the whole exchange, redirects and body included
    max_bytes: int = 15 * 1024 * 1024  # decoded bytes, so a gzip bomb stops at the cap
    max_redirects: int = 5


def make_session(*, user_agent: str, concurrency: int) -> aiohttp.ClientSession:
    """One session for a whole poll, so connections are reused. Call it inside the event loop."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300),
        headers={"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        auto_decompress=False,  # we decompress, under the byte cap
        timeout=aiohttp.ClientTimeout(total=None),  # the deadline is ours: asyncio.timeout
        cookie_jar=aiohttp.DummyCookieJar(),  # one feed's cookies are no business of another's
        # HTTP(S)_PROXY and NO_PROXY as users expect, when set: aiohttp then reads ~/.netrc
        # and the proxy settings on every request, a cost not worth paying without a proxy.
        trust_env=bool(urllib.request.getproxies()),
    )


def fetch_session(polling: PollingConfig) -> aiohttp.ClientSession:
    """The session the config asks for: its user agent and concurrency."""
    return make_session(user_agent=polling.user_agent, concurrency=polling.concurrency)


def fetch_limits(polling: PollingConfig) -> FetchLimits:
    """The bounds of one request, as the config sets them."""
    return FetchLimits(
        timeout=polling.timeout, max_bytes=polling.max_bytes, max_redirects=polling.max_redirects
    )


def is_local(url: str) -> bool:
    """A path or file:// URL, read from disk."""
    return url.startswith("file://") or "://" not in url


async def fetch(
    session: aiohttp.ClientSession,
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
            return await _fetch_http(session, url, etag, last_modified, limits, now)
    except TimeoutError:
        raise FetchError(url, f"no complete answer within {limits.timeout:g} s") from None


async def _fetch_http(
    session: aiohttp.ClientSession,
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
            async with session.get(
                URL(current), headers=headers, allow_redirects=False
            ) as response:
                location = response.headers.get("location", "").strip()
                if response.status in _REDIRECTS and location:
                    target = urljoin(current, location)
                    if still_permanent and response.status in _PERMANENT:
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
                if response.status != 304:
                    body = await _read_capped(url, response, limits.max_bytes)
                return FetchResult(
                    url=url,
                    final_url=current,
                    status=response.status,
                    body=body,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    permanent_redirect=permanent,
                )
        except (ValueError, aiohttp.InvalidURL) as e:
            raise FetchError(url, f"invalid URL: {current} ({e})") from None
        except aiohttp.ClientError as e:
            raise FetchError(url, _describe(e)) from e


def _raise_for_status(url: str, response: aiohttp.ClientResponse, now: datetime | None) -> None:
    status = response.status
    if status == 304 or (200 <= status < 300 and status != 204):
        return
    reason = f"HTTP {status} {response.reason or ''}".strip()
    if status == 410:
        raise GoneError(url, f"{reason}: the feed is gone", status=status)
    if status in (429, 503):
        when = parse_retry_after(response.headers.get("retry-after"), now=now)
        raise RetryLaterError(url, reason, status=status, retry_after=when)
    raise FetchError(url, reason, status=status)


async def _read_capped(url: str, response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    declared = response.headers.get("content-length", "")
    if not encoding and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body of {int(declared):,} bytes is over the cap of {max_bytes:,}")
    decoder = _Decoder(url, encoding)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        data = decoder.decode(chunk, max_bytes - size + 1)
        size += len(data)
        if size > max_bytes:
            raise FetchError(url, f"body is over the cap of {max_bytes:,} decoded bytes")
        chunks.append(data)
    chunks.append(decoder.flush(max_bytes - size + 1))
    if size + len(chunks[-1]) > max_bytes:
        raise FetchError(url, f"body is over the cap of {max_bytes:,} decoded bytes")
    return b"".join(chunks)


class _Decoder:
    """Content-Encoding undone a chunk at a time, never giving more than it is asked for."""

    def __init__(self, url: str, encoding: str) -> None:
        self.url = url
        self.encoding = encoding
        self.raw_deflate = False
        self.started = False
        if encoding in ("", "identity"):
            self.z = None
        elif encoding in ("gzip", "x-gzip"):
            self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.z = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FetchError(
                url, f"the server used a content encoding we did not ask for: {encoding}"
            )

    def decode(self, chunk: bytes, limit: int) -> bytes:
        if self.z is None:
            return chunk
        try:
            data = self.z.decompress(chunk, limit)
        except zlib.error as e:
            # "deflate" is zlib-wrapped by the standard, raw in some servers: try raw once.
            if self.encoding == "deflate" and not self.started and not self.raw_deflate:
                self.raw_deflate = True
                self.z = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(chunk, limit)
            raise FetchError(self.url, f"the body could not be decompressed: {e}") from None
        self.started = True
        return data

    def flush(self, limit: int) -> bytes:
        if self.z is None:
            return b""
        if self.z.unconsumed_tail:
            return self.decode(b"", limit)
        return self.z.flush()


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
    return http_date(value)


def _describe(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect: {error.os_error.strerror or error.os_error}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without an answer"
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"the body was cut short or malformed: {error}"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"the server broke the HTTP protocol: {error.message}"
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
