"""Turn fetched bytes into a ParsedFeed: feedparser for RSS/Atom/RDF, json for JSON Feed."""

from __future__ import annotations

import calendar
import io
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from .errors import NotAFeedError, ParseError
from .models import ParsedEntry, ParsedFeed

__all__ = ["parse_feed"]

log = logging.getLogger(__name__)

# Where no feed was found, an <html> or HTML doctype near the start means a web page.
_HTML_PAGE = re.compile(rb"<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE)
_JSON_TYPES = ("application/feed+json", "application/json", "text/json")


def parse_feed(url: str, body: bytes, headers: dict[str, str] | None = None) -> ParsedFeed:
    """Parse a feed document. Raise NotAFeedError for HTML and the like, ParseError for junk."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if not body.strip():
        raise NotAFeedError(url, "the response was empty")
    if content_type in _JSON_TYPES or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        return _parse_json_feed(url, body)
    return _parse_xml_feed(url, body, headers, content_type)


def _parse_xml_feed(
    url: str, body: bytes, headers: dict[str, str], content_type: str
) -> ParsedFeed:
    try:
        # A stream, so feedparser never mistakes the bytes for a URL or file name to open.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers or None)
    except Exception as e:  # feedparser's own failures on hostile bytes (TypeError, ValueError...)
        log.debug("feedparser failed on %s", url, exc_info=True)
        raise ParseError(url, f"the feed could not be parsed: {_one_line(e)}") from e
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        if content_type in ("text/html", "application/xhtml+xml") or _HTML_PAGE.search(body[:4096]):
            raise NotAFeedError(url, "the server sent an HTML page, not a feed")
        problem = parsed.get("bozo_exception")
        if problem is not None:
            raise ParseError(url, f"not a feed that can be read: {_one_line(problem)}")
        raise NotAFeedError(url, "no RSS, Atom or JSON Feed found")
    feed = parsed.get("feed") or {}
    warning = _one_line(parsed["bozo_exception"]) if parsed.get("bozo") else None
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        entries=tuple(_xml_entry(e) for e in entries),
        ttl_minutes=_ttl(feed.get("ttl")),
        warning=warning,
    )


def _xml_entry(entry: Any) -> ParsedEntry:
    summary = _text(entry.get("summary"))
    contents = entry.get("content") or []
    if not summary and contents:
        summary = _text(contents[0].get("value"))
    # dict.get: FeedParserDict's own lookup warns when it falls back from one key to the other.
    stamp = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    return ParsedEntry(
        guid=_text(entry.get("id")),
        link=_text(entry.get("link")),
        title=_text(entry.get("title")),
        summary=summary,
        published=_from_struct(stamp),
        author=_text(entry.get("author")),
    )


def _parse_json_feed(url: str, body: bytes) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as e:
        raise NotAFeedError(url, f"JSON that cannot be read: {e}") from e
    if not isinstance(doc, dict) or "jsonfeed.org/version" not in str(doc.get("version", "")):
        raise NotAFeedError(url, "JSON, but not a JSON Feed (no jsonfeed.org version)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "JSON Feed without an items list")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        author = _json_author(item)
        entries.append(
            ParsedEntry(
                guid=_text(item.get("id")),
                link=_text(item.get("url")) or _text(item.get("external_url")),
                title=_text(item.get("title")),
                summary=_text(item.get("summary"))
                or _text(item.get("content_html"))
                or _text(item.get("content_text")),
                published=_from_iso(item.get("date_published") or item.get("date_modified")),
                author=_text(author),
            )
        )
    return ParsedFeed(
        title=_text(doc.get("title")),
        link=_text(doc.get("home_page_url")),
        entries=tuple(entries),
    )


def _json_author(item: dict[str, Any]) -> str | None:
    """JSON Feed 1.1 ``authors`` (a list), or 1.0 ``author`` (an object); anything else: none."""
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]
    first = authors[0] if authors else None
    return _text(first.get("name")) if isinstance(first, dict) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value or None


MAX_TTL_MINUTES = 7 * 24 * 60  # a <ttl> beyond a week is taken as a week


def _ttl(value: Any) -> int | None:
    """RSS <ttl> in minutes: a positive whole number, capped at a week; else None."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        return None
    return min(int(text), MAX_TTL_MINUTES)


def _from_struct(stamp: time.struct_time | None) -> datetime | None:
    """feedparser gives UTC struct_times; make them aware datetimes."""
    if stamp is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _one_line(error: object) -> str:
    return " ".join(str(error).split())[:300]
