"""Turn fetched bytes into a ParsedFeed: feedparser for RSS/Atom/RDF, json for JSON Feed."""

from __future__ import annotations

import calendar
import codecs
import functools
import io
import json
import logging
import re
import time
import xml.sax
from collections import deque
from datetime import UTC, datetime
from typing import Any

import feedparser

from .errors import NotAFeedError, ParseError
from .models import ParsedEntry, ParsedFeed

__all__ = ["harden", "parse_feed"]

log = logging.getLogger(__name__)

# Names and addresses that feedparser searches for an e-mail address, with a regular expression
# whose time grows with the square of the text (2.5 s for 32 KB, 10 s for 64 KB). Real ones are
# short, so their text is cut to this many bytes before parsing.
MAX_AUTHOR_BYTES = 1024
_AUTHOR_OPEN = re.compile(
    rb"<((?:[A-Za-z_][\w.-]*:)?(?:author|creator|managingEditor|webMaster|publisher|contributor"
    rb"|name|email|owner))(?:\s[^<>]*)?(?<!/)>",
    re.IGNORECASE,
)
# What an over-long author field keeps: markup, comments and CDATA markers go, and then
# everything but the letters, digits, non-ASCII bytes and punctuation of names and addresses.
_MARKUP = re.compile(rb"<!\[CDATA\[|\]\]>|<!--|-->|<[^<>]*>")
_NOT_NAME = re.compile(rb"[^\w\x80-\xff @.+()',-]")
# A tag whose attributes run past MAX_TAG_BYTES: feedparser looks each attribute up in a list,
# so its time grows with the square of their number (100,000 of them: over a minute). The
# attributes that fit are kept, whole.
MAX_TAG_BYTES = 4096
# It must begin as a tag does, with an attribute, so "x <y and ..." in a CDATA section is not one.
_LONG_TAG = re.compile(
    rb"<([A-Za-z_][\w:.-]*)(\s+[A-Za-z_][\w:.-]*\s*=\s*[\"'][^<>]{%d,})>" % MAX_TAG_BYTES
)
_ATTRIBUTES = re.compile(rb"""(?:\s+[^\s=<>/"']+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*""")
# A DOCTYPE with an internal subset, which is where entities are declared.
_DOCTYPE = re.compile(rb"<!DOCTYPE\s", re.IGNORECASE)
_DOCTYPE_SUBSET = re.compile(rb"(<!DOCTYPE\s[^\[<>]*)\[(.*?)\]\s*>", re.IGNORECASE | re.DOTALL)
# An internal general entity with a plain value: no references to expand, nothing external.
_PLAIN_ENTITY = re.compile(
    rb"<!ENTITY\s+([A-Za-z_][\w.-]*)\s+"
    rb"""(?:"((?:[^"&%<]|&\#[0-9]+;|&\#x[0-9a-fA-F]+;)*)"|'((?:[^'&%<]|&\#[0-9]+;|&\#x[0-9a-fA-F]+;)*)')"""
    rb"\s*>"
)
MAX_ENTITIES = 64
# Entries read from one document at most, its first and last halves (the workers keep the
# newest 1,000 of them).
MAX_PARSED_ENTRIES = 5000
_CHILD = re.compile(rb"<[A-Za-z_]")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z][\w.:-]*)[\"']")
_ENTRY_OPEN = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
_ENTRY_CLOSE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
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
    safe = harden(body)
    if safe is not body:
        log.info("%s: hardened before parsing (entities, long authors or tags)", url)
    headers = _settle_charset(url, safe, headers)
    safe, cut = _first_entries(safe, MAX_PARSED_ENTRIES)
    try:
        # A stream, so feedparser never mistakes the bytes for a URL or file name to open.
        parsed = feedparser.parse(
            io.BytesIO(safe),
            response_headers=headers or None,
            # normalize strips all markup with nh3; feedparser's own sanitizer is slow on
            # hostile HTML (21 s and 400 MB for one 14 MB field) and its work would be thrown away.
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser's own failures on hostile bytes (TypeError, ValueError...)
        log.debug("feedparser failed on %s", url, exc_info=True)
        raise ParseError(url, f"the feed could not be parsed: {_one_line(e)}") from e
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        if content_type in ("text/html", "application/xhtml+xml") or _HTML_PAGE.search(body[:4096]):
            raise NotAFeedError(url, "the server sent an HTML page, not a feed")
        problem = parsed.get("bozo_exception")
        # Only broken XML is an error; a note on the encoding or media type of a document
        # that holds no feed (an OPML list, say) is not what is wrong with it.
        if isinstance(problem, xml.sax.SAXException):
            raise ParseError(url, f"not a feed that can be read: {_one_line(problem)}")
        raise NotAFeedError(url, "no RSS, Atom or JSON Feed found")
    feed = parsed.get("feed") or {}
    warning = _one_line(parsed["bozo_exception"]) if parsed.get("bozo") else None
    if cut:
        half = MAX_PARSED_ENTRIES // 2
        warning = f"read the first and the last {half:,} entries of a longer document"
    elif warning and entries and _last_entry_unclosed(safe):
        # A document cut short (a dropped connection, a lying Content-Length): its last entry
        # is cut too, and would be stored with half a headline or none.
        entries = entries[:-1]
        warning = f"the document is cut short; its last entry was left out ({warning})"
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        entries=tuple(_xml_entry(e) for e in entries),
        ttl_minutes=_ttl(feed.get("ttl")),
        warning=warning,
    )


def harden(body: bytes) -> bytes:
    """``body`` made safe for feedparser: the same object when nothing needed changing.

    - Entity declarations: expat expands nested entities (a "billion laughs" bomb) for seconds
      before its amplification limit stops it, and feedparser's own clean-up of the DOCTYPE
      misses declarations that share a line. Only plain internal entities are kept, and only
      while their expansions add up to no more than the document itself. External entities
      (XXE) and parameter entities are dropped.
    - A tag's attributes are cut to those that fit in MAX_TAG_BYTES (see above).
    - Author-like fields are cut to MAX_AUTHOR_BYTES (see above), from the start of the
      element to its end: splitting the text with comments or CDATA sections changes nothing.

    Byte patterns, so this sees documents in UTF-8 and the other ASCII-compatible encodings;
    UTF-16 and UTF-32 documents go to feedparser as they are.
    """
    return _LONG_TAG.sub(_fitting_attributes, _cut_authors(_defuse_entities(body)))


def _defuse_entities(body: bytes) -> bytes:
    # The first DOCTYPE, if it comes before the first entry (a DOCTYPE after that is text).
    # Only that one is looked at: trying each would be quadratic in a document of many.
    first = _DOCTYPE.search(body)
    if first is None or _ENTRY_OPEN.search(body, 0, first.start()) is not None:
        return body
    doctype = _DOCTYPE_SUBSET.match(body, first.start())
    if doctype is None:
        return body
    kept: list[bytes] = []
    expansion = 0
    for match in _PLAIN_ENTITY.finditer(doctype.group(2)):
        if len(kept) == MAX_ENTITIES:
            break
        name, value = match.group(1), match.group(2) or match.group(3) or b""
        expansion += body.count(b"&" + name + b";", doctype.end()) * len(value)
        if expansion > len(body):
            break
        kept.append(match.group(0))
    # One declaration a line, the layout feedparser's own DOCTYPE clean-up looks for.
    subset = b"[\n" + b"\n".join(kept) + b"\n]" if kept else b""
    return body[: doctype.start()] + doctype.group(1) + subset + b">" + body[doctype.end() :]


def _cut_authors(body: bytes) -> bytes:
    """Every author-like element over MAX_AUTHOR_BYTES that holds only text (split by comments
    or CDATA sections, or not), cut to that. One holding elements (an Atom <author> with its
    <name>, <uri> and avatar) is left whole: its leaves are looked at on their own.

    One forward pass: where the next closing tag of each name and the next element are is
    remembered, and each is searched for again only once passed, so no byte is scanned twice
    for the same thing however many unclosed tags there are.
    """
    pieces: list[bytes] = []
    done = 0  # everything before this is in ``pieces``
    next_close: dict[bytes, int] = {}  # by local name: where its next close tag starts
    next_child = -1
    for match in _AUTHOR_OPEN.finditer(body):
        start = match.end()
        if match.start() < done:
            continue  # inside an element already cut
        name = match.group(1).rpartition(b":")[2].lower()
        end = next_close.get(name, -2)
        if end != -1 and end < start:  # not searched yet, or passed: search on from here
            found = _close_tag(name).search(body, start)
            end = found.start() if found else -1
            next_close[name] = end
        if end == -1 or end - start <= MAX_AUTHOR_BYTES:
            continue
        if next_child < start:
            child = _CHILD.search(body, start)
            next_child = child.start() if child else len(body)
        if next_child < end:
            continue
        pieces += (body[done:start], _name_only(body[start:end]))
        done = end
    if not pieces:
        return body
    return b"".join(pieces) + body[done:]


@functools.cache
def _close_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?" + re.escape(name) + rb"\s*>", re.IGNORECASE)


def _fitting_attributes(match: re.Match[bytes]) -> bytes:
    attributes = match.group(2)
    closing = b"/" if attributes.rstrip().endswith(b"/") else b""
    whole = _ATTRIBUTES.match(attributes, 0, MAX_TAG_BYTES)
    kept = whole.group(0) if whole else b""
    return b"<" + match.group(1) + kept + closing + b">"


def _name_only(content: bytes) -> bytes:
    text = _NOT_NAME.sub(b"", _MARKUP.sub(b"", content[: MAX_AUTHOR_BYTES * 64]))
    text = text[:MAX_AUTHOR_BYTES]
    # Not in the middle of a UTF-8 character.
    end = len(text)
    while end and text[end - 1] & 0xC0 == 0x80:
        end -= 1
    if end and text[end - 1] >= 0xC0:
        end -= 1
    return text[:end]


def _settle_charset(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """The headers for feedparser, when the server's charset and the document's disagree.

    feedparser believes the server (as RFC 7303 says), which turns a UTF-8 document served as
    Latin-1 into mojibake. Bytes that are valid UTF-8 beyond ASCII are UTF-8 in practice, so
    when either side says UTF-8 and the bytes agree, UTF-8 it is. The disagreement is logged.
    """
    content_type = headers.get("content-type", "")
    served = _CHARSET.search(content_type)
    declared = _XML_ENCODING.match(body.lstrip(b"\xef\xbb\xbf \t\r\n"))
    if served is None or declared is None:
        return headers
    names = {_codec(served.group(1)), _codec(declared.group(1).decode("ascii"))}
    if len(names) == 1:
        return headers
    disagreement = (
        f"the server says charset={served.group(1)}, the document "
        f"{declared.group(1).decode('ascii')}"
    )
    if _codec("utf-8") in names and not body.isascii() and _is_utf8(body):
        log.info("%s: %s; the bytes are UTF-8, read as UTF-8", url, disagreement)
        return {**headers, "content-type": content_type[: served.start()] + "charset=utf-8"}
    log.info("%s: %s", url, disagreement)
    return headers


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_entries(body: bytes, limit: int) -> tuple[bytes, bool]:
    """``body`` with at most ``limit`` entries, its first and last halves, and whether any were
    left out.

    feedparser takes about 0.1 ms an entry, so 15 MB of tiny entries would take 15 s; no
    news feed has thousands of entries at once. Both ends, because feeds list newest first or
    oldest first. Entries are counted by where they open, so unclosed or empty ones count too.
    """
    half = limit // 2
    head = -1  # where entry number half + 1 opens
    tail: deque[int] = deque(maxlen=half)  # where the last ``half`` entries open
    count = 0
    for match in _ENTRY_OPEN.finditer(body):
        count += 1
        if count == half + 1:
            head = match.start()
        tail.append(match.start())
    if count <= limit:
        return body, False
    return body[:head] + body[tail[0] :], True


def _last_entry_unclosed(body: bytes) -> bool:
    """Whether the last <item> or <entry> of ``body`` opens and never closes."""
    last_open = max((m.start() for m in _ENTRY_OPEN.finditer(body)), default=-1)
    last_close = max((m.start() for m in _ENTRY_CLOSE.finditer(body)), default=-1)
    return last_open > last_close


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
