"""Read and write OPML subscription lists, for `feeds import` and `feeds export` (pure, no I/O).

Reading goes through defusedxml: a list comes from anywhere, and how well plain ElementTree or
minidom resist a "billion laughs" entity bomb depends on the expat that Python was built with;
defusedxml refuses every entity declaration, external or not, outright. listparser was weighed
and left out: it decodes every document as UTF-8 (a declared ISO-8859-1 or UTF-16 list raises
UnicodeDecodeError), answers HTML or garbage with an empty list instead of an error, and parses
with lxml's recovering HTML parser or with html.parser depending on whether lxml happens to be
installed. Walking the outlines of a real XML tree is a few lines more and does not guess.

Writing uses xml.etree.ElementTree, which is safe for building documents.
"""

from __future__ import annotations

import email.utils
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import defusedxml
import defusedxml.ElementTree

from .errors import OpmlError
from .models import FeedConfig

__all__ = ["NOT_WEB", "OpmlList", "SkippedOutline", "parse_opml", "read_opml", "render_opml"]

# C0 and C1 controls (tab and newline fold to spaces): no escape codes to the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What XML 1.0 cannot carry at all, even escaped: left out of what we write.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


NOT_WEB = "not an http(s) URL"


@dataclass(frozen=True)
class SkippedOutline:
    """A feed outline that was not imported, and why."""

    url: str
    title: str | None
    reason: str

    def to_json(self) -> dict[str, str | None]:
        return {"url": self.url, "title": self.title, "reason": self.reason}


@dataclass(frozen=True)
class OpmlList:
    """What a subscription list holds: its title, the feeds to import, the outlines skipped."""

    title: str | None
    feeds: tuple[FeedConfig, ...]
    skipped: tuple[SkippedOutline, ...]


def parse_opml(data: bytes, source: str) -> list[FeedConfig]:
    """The feeds of an OPML document (see ``read_opml``, which also says what it skipped)."""
    return list(read_opml(data, source).feeds)


def read_opml(
    data: bytes, source: str, *, extra_tags: Sequence[str] = (), local_files: bool = False
) -> OpmlList:
    """Read an OPML 1.0/2.0 subscription list; ``source`` names it in error messages.

    An outline with an ``xmlUrl`` is a feed: its title is ``title``, else ``text`` (a text that
    is only the URL is no title). Outlines without one are folders, and a feed's folders become
    its tags, outermost first, followed by its ``category`` attribute (comma-separated, each a
    tag or a /slash/path whose parts are tags) and then ``extra_tags``. A URL listed twice is
    kept once, with the tags of both places. Only http(s) feeds are imported: the others are
    skipped with a reason, so a list from the web cannot point aggregator at local files.
    ``local_files``: file:// feeds are kept too, as the paths they name (the caller decides
    whether the list may name local files).

    Raises OpmlError for anything that is not well-formed OPML, and for documents that declare
    entities (a billion-laughs bomb, an external entity): never an XML library's traceback.
    """
    root = _parse_xml(data, source)
    if _local_name(root.tag) != "opml":
        raise OpmlError(
            f"{source}: not an OPML subscription list "
            f"(its root element is <{_local_name(root.tag)}>, not <opml>)"
        )
    body = next((child for child in root if _local_name(child.tag) == "body"), None)
    if body is None:
        raise OpmlError(f"{source}: an OPML document without a <body>, so without feeds")
    head = next((child for child in root if _local_name(child.tag) == "head"), None)
    title_node = (
        None if head is None else next((c for c in head if _local_name(c.tag) == "title"), None)
    )
    list_title = _clean(title_node.text) if title_node is not None else ""

    feeds: dict[str, FeedConfig] = {}  # by URL, in document order
    skipped: dict[str, SkippedOutline] = {}
    # Iterative, so a hostile list nested a million folders deep cannot exhaust the stack.
    stack: list[tuple[ET.Element, tuple[str, ...]]] = [
        (child, ()) for child in reversed(list(body))
    ]
    while stack:
        node, folders = stack.pop()
        if _local_name(node.tag) != "outline":
            continue
        attrs = {name.lower(): value for name, value in node.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        text = _clean(attrs.get("text"))
        inner = folders
        if url:
            title = _clean(attrs.get("title")) or (text if text != url else "") or None
            tags = _unique([*folders, *_categories(attrs.get("category")), *extra_tags])
            reason = _unusable(url)
            if local_files and urlsplit(url).scheme.lower() == "file":
                url, reason = url2pathname(urlsplit(url).path), None
            if reason:
                skipped.setdefault(url, SkippedOutline(url=url, title=title, reason=reason))
            elif url in feeds:
                known = feeds[url]
                feeds[url] = replace(known, tags=_unique([*known.tags, *tags]))
            else:
                feeds[url] = FeedConfig(url=url, title=title, tags=tags)
        elif name := text or _clean(attrs.get("title")):
            inner = (*folders, name)
        stack.extend((child, inner) for child in reversed(list(node)))
    return OpmlList(
        title=list_title or None, feeds=tuple(feeds.values()), skipped=tuple(skipped.values())
    )


def render_opml(feeds: Sequence[FeedConfig], *, title: str, now: datetime) -> str:
    """An OPML 2.0 document listing ``feeds``, as text (UTF-8 when written).

    A feed with tags sits in a folder (an outline) named after its first tag, and all its tags
    are also in its ``category`` attribute. Folders are what feed readers (NetNewsWire, Feedly,
    Inoreader, Miniflux, FreshRSS) show and import; hardly any reads ``category``. One folder per
    feed, not one per tag, so a reader does not subscribe to a feed once for each of its tags.
    ``category`` keeps the other tags, so export then import gives back the same tags. Local
    feeds are written as file:// URLs, since ``xmlUrl`` must be a URL.
    """
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    created = email.utils.format_datetime(now.astimezone(UTC), usegmt=True)
    ET.SubElement(head, "dateCreated").text = created  # RFC 822, as OPML 2.0 asks
    body = ET.SubElement(opml, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            first = feed.tags[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=_xml_text(first))
            parent = folders[first]
        url = _xml_url(feed.url)
        attrs = {"type": "rss", "text": _xml_text(feed.title or url)}
        if feed.title:
            attrs["title"] = _xml_text(feed.title)
        attrs["xmlUrl"] = url
        # A comma or a slash inside a tag would read back as two tags or a path: left out.
        category = ",".join(t for t in feed.tags if "," not in t and "/" not in t)
        if category:
            attrs["category"] = _xml_text(category)
        ET.SubElement(parent, "outline", attrs)
    ET.indent(opml, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(opml, encoding="unicode") + "\n"


# --- reading ----------------------------------------------------------------------------------


def _parse_xml(data: bytes, source: str) -> ET.Element:
    try:
        # forbid_dtd stays off: some exporters write a harmless <!DOCTYPE opml>. Entities,
        # internal or external, are what defusedxml refuses, and that is what matters here.
        return defusedxml.ElementTree.fromstring(data, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as e:
        raise OpmlError(
            f"{source}: refused: the document declares XML entities or external references, "
            f"which a subscription list never needs ({type(e).__name__})"
        ) from None
    except ET.ParseError as e:
        raise OpmlError(
            f"{source}: not an OPML subscription list: not well-formed XML ({e})"
        ) from None


def _local_name(tag: object) -> str:
    # Comments and processing instructions have a function as their tag.
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _clean(value: str | None) -> str:
    return " ".join(_CONTROL.sub(" ", value).split()) if value else ""


def _categories(value: str | None) -> list[str]:
    """OPML 2.0's ``category``: "tag,/path/to/category": a tag, and each part of a path."""
    if not value:
        return []
    return [_clean(part) for item in value.split(",") for part in item.split("/") if _clean(part)]


def _unique(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def _unusable(url: str) -> str | None:
    """Why ``url`` cannot be imported as a feed, or None when it can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.scheme.lower() not in {"http", "https"}:
        return NOT_WEB
    if not host:
        return "the URL names no host"
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        return "white space or control characters in the URL"
    return None


# --- writing ----------------------------------------------------------------------------------


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _xml_url(url: str) -> str:
    if "://" in url:
        return _xml_text(url)
    path = Path(url)
    return path.as_uri() if path.is_absolute() else _xml_text(url)
