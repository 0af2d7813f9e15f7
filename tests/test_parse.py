from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import FeedError, NotAFeedError, ParseError
from aggregator.parse import parse_feed

URL = "https://example.com/feed"
SHARED = Path(__file__).parents[2] / "shared"
REAL_FEEDS = SHARED / "corpus" / "real-feeds"
FEED_SUFFIXES = {".rss", ".atom", ".xml", ".rdf", ".json"}

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>Harbour Town Gazette</title>
    <link>https://gazette.example/</link>
    <description>Local happenings</description>
    <ttl>120</ttl>
    <item>
      <title>Ferry timetable changes for winter</title>
      <link>https://gazette.example/ferry-winter</link>
      <guid isPermaLink="false">gazette-ferry-0001</guid>
      <description>&lt;p&gt;Boats leave &lt;b&gt;earlier&lt;/b&gt;.&lt;/p&gt;</description>
      <pubDate>Tue, 03 Jun 2025 09:39:21 +0200</pubDate>
      <author>desk@gazette.example (News Desk)</author>
    </item>
    <item>
      <title>Lighthouse reopens to visitors</title>
      <link>https://gazette.example/lighthouse</link>
      <description>After two years of repairs.</description>
      <pubDate>Mon, 02 Jun 2025 18:00:00 -0500</pubDate>
    </item>
  </channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Orchard Notes</title>
  <link href="https://orchard.example/"/>
  <id>urn:uuid:0a1b2c3d-0000-4000-8000-000000000001</id>
  <updated>2025-06-03T10:00:00Z</updated>
  <entry>
    <title type="html">Pruning &lt;em&gt;apple&lt;/em&gt; trees</title>
    <link rel="alternate" href="https://orchard.example/pruning"/>
    <id>urn:uuid:0a1b2c3d-0000-4000-8000-000000000002</id>
    <published>2025-06-03T09:39:21+05:30</published>
    <updated>2025-06-03T11:00:00+05:30</updated>
    <author><name>Ida Orchard</name></author>
    <content type="html">&lt;p&gt;Cut above the bud.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Only updated</title>
    <link href="https://orchard.example/updated-only"/>
    <id>urn:uuid:0a1b2c3d-0000-4000-8000-000000000003</id>
    <updated>2025-06-01T23:30:00-02:00</updated>
    <summary>Just a summary.</summary>
  </entry>
</feed>
"""

RDF = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://birds.example/">
    <title>Bird Watch</title>
    <link>https://birds.example/</link>
    <description>Sightings</description>
    <items>
      <rdf:Seq>
        <rdf:li rdf:resource="https://birds.example/heron"/>
      </rdf:Seq>
    </items>
  </channel>
  <item rdf:about="https://birds.example/heron">
    <title>Grey heron at the pond</title>
    <link>https://birds.example/heron</link>
    <description>Seen at dawn.</description>
    <dc:date>2025-06-03T06:15:00+01:00</dc:date>
    <dc:creator>Pat</dc:creator>
  </item>
</rdf:RDF>
"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Workshop Log",
    "home_page_url": "https://workshop.example/",
    "feed_url": "https://workshop.example/feed.json",
    "items": [
        {
            "id": "log-42",
            "url": "https://workshop.example/42",
            "title": "Sharpening chisels",
            "content_html": "<p>Use a <em>fine</em> stone.</p>",
            "date_published": "2025-06-03T09:39:21-07:00",
            "authors": [{"name": "Sam"}],
        },
        {
            "id": 43,
            "external_url": "https://elsewhere.example/glue",
            "summary": "Which glue for oak?",
            "content_text": "Long text here.",
            "date_modified": "2025-06-02T08:00:00Z",
        },
        {
            "id": "log-44",
            "content_text": "A note with no title.",
            "date_published": "2025-06-01T12:00:00",
        },
        "not an item",
    ],
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_rss2() -> None:
    feed = parse_feed(URL, RSS2, {"Content-Type": "application/rss+xml; charset=utf-8"})
    assert feed.title == "Harbour Town Gazette"
    assert feed.link == "https://gazette.example/"
    assert feed.ttl_minutes == 120
    assert feed.warning is None
    first, second = feed.entries
    assert first.title == "Ferry timetable changes for winter"
    assert first.link == "https://gazette.example/ferry-winter"
    assert first.guid == "gazette-ferry-0001"
    assert first.summary is not None and "earlier" in first.summary
    assert first.published == utc(2025, 6, 3, 7, 39, 21)
    assert first.author is not None and "News Desk" in first.author
    assert second.title == "Lighthouse reopens to visitors"
    assert second.published == utc(2025, 6, 2, 23, 0, 0)


def test_atom() -> None:
    feed = parse_feed(URL, ATOM, {"content-type": "application/atom+xml"})
    assert feed.title == "Orchard Notes"
    assert feed.link == "https://orchard.example/"
    assert feed.ttl_minutes is None
    first, second = feed.entries
    assert first.guid == "urn:uuid:0a1b2c3d-0000-4000-8000-000000000002"
    assert first.link == "https://orchard.example/pruning"
    assert first.title is not None and "apple" in first.title
    assert first.summary is not None and "Cut above the bud." in first.summary
    # published wins over updated
    assert first.published == utc(2025, 6, 3, 4, 9, 21)
    assert first.author == "Ida Orchard"
    # updated is used when published is missing
    assert second.published == utc(2025, 6, 2, 1, 30, 0)
    assert second.summary == "Just a summary."


def test_rss1_rdf() -> None:
    feed = parse_feed(URL, RDF)
    assert feed.title == "Bird Watch"
    (item,) = feed.entries
    assert item.title == "Grey heron at the pond"
    assert item.link == "https://birds.example/heron"
    assert item.summary == "Seen at dawn."
    assert item.published == utc(2025, 6, 3, 5, 15, 0)
    assert item.author == "Pat"


@pytest.mark.parametrize(
    "content_type", ["application/feed+json", "application/json", "text/plain", None]
)
def test_json_feed(content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    feed = parse_feed(URL, json.dumps(JSON_FEED).encode(), headers)
    assert feed.title == "Workshop Log"
    assert feed.link == "https://workshop.example/"
    assert len(feed.entries) == 3  # the string item is skipped
    first, second, third = feed.entries
    assert first.guid == "log-42"
    assert first.link == "https://workshop.example/42"
    assert first.title == "Sharpening chisels"
    assert first.summary is not None and "fine" in first.summary
    assert first.published == utc(2025, 6, 3, 16, 39, 21)
    assert first.author == "Sam"
    assert second.guid == "43"
    assert second.link == "https://elsewhere.example/glue"
    assert second.title is None
    assert second.summary == "Which glue for oak?"
    assert second.published == utc(2025, 6, 2, 8, 0, 0)
    # a time without an offset is read as UTC
    assert third.published == utc(2025, 6, 1, 12, 0, 0)
    assert third.summary == "A note with no title."


def test_json_feed_with_bom_and_version_1() -> None:
    doc = {"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "title": "x"}]}
    feed = parse_feed(URL, b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert [e.title for e in feed.entries] == ["x"]


@pytest.mark.parametrize(
    ("item", "author"),
    [
        ({"authors": [{"name": "New Style"}, {"name": "Second"}]}, "New Style"),
        ({"author": {"name": "Old Style"}}, "Old Style"),
        ({"authors": [{"url": "https://x.example/"}]}, None),
        ({}, None),
    ],
)
def test_json_feed_author(item: dict[str, object], author: str | None) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", **item}]}
    assert parse_feed(URL, json.dumps(doc).encode()).entries[0].author == author


def test_json_feed_without_items_is_a_parse_error() -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "x"}).encode()
    with pytest.raises(ParseError):
        parse_feed(URL, body)


HTML_PAGES = {
    "doctype": (b"<!DOCTYPE html><html><head><title>Hi</title></head><body>Page</body></html>", {}),
    "no-doctype": (b"<html><body><p>Login required</p></body></html>", {}),
    "comment-first": (b"  <!-- generated -->\n<!doctype html>\n<html><body>x</body></html>", {}),
    "upper-case": (b"\n\n<HTML><BODY>x<br></BODY></HTML>", {}),
    "html-content-type": (b"<p>Just a fragment</p>", {"Content-Type": "text/html; charset=utf-8"}),
    "feed-content-type": (
        b"<!DOCTYPE html><html><body>x</body></html>",
        {"Content-Type": "application/rss+xml"},
    ),
    "byte-order-mark": (b"\xef\xbb\xbf<!DOCTYPE html><html><body>x<br></body></html>", {}),
    "xml-declaration": (
        b'<?xml version="1.0" encoding="utf-8"?>\n<html><body><p>a<br></body></html>',
        {},
    ),
    "xhtml": (
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b"<head><title>t</title></head><body><p>x</p></body></html>",
        {},
    ),
}


@pytest.mark.parametrize(("body", "headers"), HTML_PAGES.values(), ids=HTML_PAGES.keys())
def test_html_page_is_not_a_feed(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(NotAFeedError) as info:
        parse_feed(URL, body, headers)
    assert info.value.url == URL


@pytest.mark.parametrize("body", [b"", b"   \n\t  "])
def test_empty_body_is_not_a_feed(body: bytes) -> None:
    with pytest.raises(NotAFeedError, match="empty"):
        parse_feed(URL, body)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"name": "an API response", "items": []}', {}),
        (b'{"version": "2.0", "items": []}', {}),
        (b"[1, 2, 3]", {"Content-Type": "application/json"}),
        (b'"just a string"', {"Content-Type": "application/json"}),
        (b"{not json", {}),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(NotAFeedError):
        parse_feed(URL, body, headers)


def test_xml_that_is_not_a_feed() -> None:
    with pytest.raises(NotAFeedError):
        parse_feed(URL, b'<?xml version="1.0"?><config><debug>true</debug></config>')


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff\xfe\x01garbage",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
        b"<rss",
        b"<<<>>>",
        b"not xml at all",
        b"{",
        b"\xef\xbb\xbf",
    ],
)
def test_garbage_is_a_feed_error(body: bytes) -> None:
    with pytest.raises((NotAFeedError, ParseError)):
        parse_feed(URL, body)


@pytest.mark.parametrize(
    "body",
    [
        b'<rss version="2.0"><channel><image></height></image></channel></rss>',
        b'<rss version="2.0"><channel><image></width></image></channel></rss>',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry></height></entry></feed>',
        b'<?xml version="1.0" encoding="no-such-codec"?><rss version="2.0"><channel/></rss>',
        b'<?xml version="1.0" encoding="utf\xa38"?><rss version="2.0"><channel/></rss>',
        b'<?xml version="1.0" encoding="utf\x008"?><rss version="2.0"><channel/></rss>',
    ],
    ids=[
        "rss-height",
        "rss-width",
        "atom-height",
        "unknown-encoding",
        "encoding-non-ascii",
        "encoding-nul",
    ],
)
def test_damaged_feed_gives_feed_or_feed_error(body: bytes) -> None:
    """Damage that trips feedparser itself must still be the feed's problem, never a crash."""
    with contextlib.suppress(FeedError):
        parse_feed(URL, body)


def test_random_bytes_never_raise_anything_but_feed_errors() -> None:
    rng = random.Random(20250603)
    for _ in range(200):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        with contextlib.suppress(FeedError):
            parse_feed(URL, body)


@pytest.mark.parametrize(
    "item",
    [
        {"id": "1", "title": "t", "authors": {"name": "A mapping, not a list"}},
        {"id": "1", "title": "t", "authors": 5},
        {"id": "1", "title": "t", "authors": [None]},
        {"id": "1", "title": "t", "date_published": "0001-01-01T00:00:00+01:00"},
        {"id": "1", "title": "t", "date_published": "9999-12-31T23:59:59-01:00"},
        {"id": "1", "title": "t", "date_published": "yesterday"},
        {"id": ["odd"], "title": {"odd": True}, "url": 7},
    ],
    ids=[
        "authors-mapping",
        "authors-number",
        "authors-null-member",
        "date-year-1",
        "date-year-9999",
        "date-words",
        "odd-types",
    ],
)
def test_malformed_json_feed_item_gives_entry_or_feed_error(item: dict[str, object]) -> None:
    """Garbage inside an otherwise valid JSON Feed is the feed's problem, never a crash."""
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]}).encode()
    try:
        feed = parse_feed(URL, body)
    except FeedError:
        return
    assert len(feed.entries) == 1


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 03 Jun 2025 09:39:21 GMT", utc(2025, 6, 3, 9, 39, 21)),
        ("Tue, 03 Jun 2025 09:39:21 +0000", utc(2025, 6, 3, 9, 39, 21)),
        ("Tue, 03 Jun 2025 01:00:00 +0300", utc(2025, 6, 2, 22, 0, 0)),
        ("Tue, 03 Jun 2025 23:30:00 -0130", utc(2025, 6, 4, 1, 0, 0)),
        ("Tue, 03 Jun 2025 09:00:00 EST", utc(2025, 6, 3, 14, 0, 0)),
    ],
)
def test_rss_dates_become_aware_utc(date: str, expected: datetime) -> None:
    body = RSS2.replace(b"Tue, 03 Jun 2025 09:39:21 +0200", date.encode())
    published = parse_feed(URL, body).entries[0].published
    assert published == expected
    assert published is not None and published.utcoffset() is not None
    assert published.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "replacement",
    [b"<pubDate>sometime last week</pubDate>", b"<pubDate></pubDate>", b""],
    ids=["unreadable", "empty", "absent"],
)
def test_missing_or_unreadable_date_is_none(replacement: bytes) -> None:
    body = RSS2.replace(b"<pubDate>Tue, 03 Jun 2025 09:39:21 +0200</pubDate>", replacement)
    assert parse_feed(URL, body).entries[0].published is None


@pytest.mark.parametrize(
    ("ttl", "expected"), [(b"60", 60), (b" 15 ", 15), (b"0", None), (b"soon", None)]
)
def test_ttl(ttl: bytes, expected: int | None) -> None:
    assert (
        parse_feed(URL, RSS2.replace(b"<ttl>120</ttl>", b"<ttl>" + ttl + b"</ttl>")).ttl_minutes
        == expected
    )


def test_rss_without_ttl() -> None:
    assert parse_feed(URL, RSS2.replace(b"<ttl>120</ttl>", b"")).ttl_minutes is None


def test_recoverable_malformed_feed_gives_entries_and_warning() -> None:
    # An undefined entity and missing closing tags: feedparser's loose parser recovers.
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Loose</title>'
        b"<item><title>Caf&eacute; opens &bogus; early</title>"
        b"<link>https://loose.example/cafe</link></item>"
        b"<item><title>Second</title><link>https://loose.example/2</link></item>"
    )
    feed = parse_feed(URL, body)
    assert [e.link for e in feed.entries] == [
        "https://loose.example/cafe",
        "https://loose.example/2",
    ]
    assert feed.warning
    assert "\n" not in feed.warning


def test_feed_without_items_is_a_feed_with_no_entries() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    feed = parse_feed(URL, body)
    assert feed.title == "Quiet"
    assert feed.entries == ()


def real_feed_files() -> list[Path]:
    if not REAL_FEEDS.is_dir():
        return []
    return sorted(p for p in REAL_FEEDS.iterdir() if p.suffix.lower() in FEED_SUFFIXES)


@pytest.mark.skipif(
    not REAL_FEEDS.is_dir(), reason=f"{REAL_FEEDS} is absent (../shared not mounted)"
)
def test_real_feed_corpus_is_present() -> None:
    assert len(real_feed_files()) >= 30


@pytest.mark.skipif(
    not REAL_FEEDS.is_dir(), reason=f"{REAL_FEEDS} is absent (../shared not mounted)"
)
@pytest.mark.parametrize("path", real_feed_files(), ids=lambda p: p.name)
def test_real_feed_gives_entries_or_feed_error(path: Path) -> None:
    try:
        feed = parse_feed(f"file://{path}", path.read_bytes())
    except FeedError as e:
        assert e.url == f"file://{path}"
        return
    assert len(feed.entries) >= 1
    for entry in feed.entries:
        assert entry.published is None or entry.published.utcoffset() is not None
