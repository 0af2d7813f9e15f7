"""(pure) The feeds a web page advertises: its ``<link rel="alternate">`` to RSS, Atom or JSON
Feed, as browsers and readers such as Miniflux find them. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

__all__ = ["FEED_TYPES", "AdvertisedFeed", "advertised_feeds"]

# The media types a feed link declares, and what to call each.
FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
    "application/rdf+xml": "RSS",
}
MAX_LINKS = 50  # a page advertising more is not listing feeds for people


@dataclass(frozen=True)
class AdvertisedFeed:
    """One feed a page links to: its absolute URL, its kind, and the title the link gives."""

    url: str
    kind: str
    title: str | None


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: dict[str, AdvertisedFeed] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and not self.found:
            href = dict(attrs).get("href")
            if href:
                self.base = urljoin(self.base, href.strip())
        if tag != "link" or len(self.found) >= MAX_LINKS:
            return
        values = {name.lower(): (value or "").strip() for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = FEED_TYPES.get(values.get("type", "").lower().split(";")[0].strip())
        href = values.get("href")
        if "alternate" not in rels or kind is None or not href:
            return
        url = urljoin(self.base, href)
        if urlsplit(url).scheme.lower() not in {"http", "https"}:
            return  # a page from the web may not point aggregator at local files
        title = " ".join(values.get("title", "").split()) or None
        self.found.setdefault(url, AdvertisedFeed(url=url, kind=kind, title=title))


def advertised_feeds(page: bytes, url: str) -> list[AdvertisedFeed]:
    """The feeds the HTML ``page`` fetched from ``url`` advertises, in page order, once each."""
    parser = _Links(url)
    # The links sit in the head; the first 512 kB hold it on any page meant for people.
    parser.feed(page[: 512 * 1024].decode("utf-8", errors="replace"))
    parser.close()
    return list(parser.found.values())
