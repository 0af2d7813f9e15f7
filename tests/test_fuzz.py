"""Fuzzing with hypothesis: parse and normalize take any bytes, including real feeds mutated at
random, and only ever answer with a feed or a FeedError, in bounded time; a digest built from
any text never carries a line break into its subject or active content into its HTML.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.digest import subject_line
from aggregator.errors import FeedError
from aggregator.mail import compose
from aggregator.models import DigestEntry, Document
from aggregator.workers import read_document

from .conftest import SHARED
from .test_digest import MAIL, _Active, digest, story

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# "Never hangs": a generous bound per example on a shared, noisy machine. The slowest honest
# parse in the corpus takes a few tens of milliseconds.
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REAL_FEEDS = sorted(
    p
    for p in (SHARED / "corpus" / "real-feeds").glob("*")
    if p.suffix in {".rss", ".atom", ".xml", ".json", ".rdf"}
)
# Pieces that have broken parsers before: entity tricks, unclosed sections, stray bytes.
HOSTILE = [
    b'<!DOCTYPE x [<!ENTITY a "&a;&a;"><!ENTITY b SYSTEM "file:///etc/passwd">]>',
    b"<!ENTITY % p SYSTEM 'file:///etc/hostname'>%p;",
    b"&b;&a;&#0;&#x110000;&#xD800;&bogus;",
    b"<![CDATA[",
    b"]]>",
    b"<item>",
    b"</item></channel></rss>",
    b"<entry><author>" + b"a." * 3000 + b"</author>",
    b"\x00\xff\xfe\xef\xbb\xbf",
    b'<?xml version="1.0" encoding="utf-16"?>',
    b"<script>alert(1)</script>",
    b'<a href="javascript:alert(1)">x</a>',
    b"<pubDate>Mon, 99 Foo 99999 99:99:99 +9999</pubDate>",
    b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": []}]}',
]


def read(url: str, body: bytes) -> Document | None:
    """What a poll's parser does with a body: parse, normalise every entry, or a FeedError."""
    try:
        return read_document(url, body, {}, NOW)
    except FeedError:
        return None


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_give_a_feed_or_a_feed_error(body: bytes) -> None:
    read("https://fuzz.example/feed", body)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real feed with a few random cuts, flips, repeats and hostile insertions."""
    body = bytearray(draw(st.sampled_from(REAL_FEEDS)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "truncate"]))
        if kind == "flip" and at < len(body):
            body[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del body[at : at + draw(st.integers(1, 200))]
        elif kind == "insert":
            body[at:at] = draw(st.sampled_from(HOSTILE))
        elif kind == "repeat":
            body[at:at] = body[at : at + draw(st.integers(1, 300))] * draw(st.integers(2, 20))
        else:
            del body[at:]
    return bytes(body)


@pytest.mark.skipif(not REAL_FEEDS, reason=f"{SHARED}/corpus/real-feeds is absent (../shared)")
@FUZZ
@given(mutated())
def test_mutated_real_feeds_give_a_feed_or_a_feed_error(body: bytes) -> None:
    document = read("https://fuzz.example/feed", body)
    for article in document.articles if document else ():
        assert article.title and "\x1b" not in article.title + article.summary
        assert article.published <= NOW + timedelta(minutes=10)


# --- rendering -------------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '<img src=x onerror="alert(1)">',
            "<style>body{background:url(javascript:alert(1))}</style>",
            '"><svg onload=alert(1)>',
            "Line one\r\nBcc: victim@example.org",
            "Para\u2028graph\u2029break\x85next\x0bvt\x0cff",
            "<a href='javascript:alert(1)'>click</a>",
            "<iframe src=//evil.example></iframe>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ]
    ),
)
NASTY_URL = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            'https://ok.example/a?b="><script>alert(1)</script>',
        ]
    ),
    st.text(max_size=80).map(lambda s: "https://outlet.example/" + s),
)


@settings(max_examples=200, deadline=timedelta(seconds=5))
@given(title=NASTY_TEXT, url=NASTY_URL, sources=st.integers(1, 4))
def test_any_story_gives_a_one_line_subject_and_html_without_active_content(
    title: str, url: str, sources: int
) -> None:
    entry = DigestEntry(story(1, sources, title, url=url))
    subject = subject_line(MAIL.subject, digest(entry))
    assert not re.search(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", subject)
    message = compose(digest(entry), MAIL, "me@example.org", links=3)
    for name, value in message.items():
        assert "\n" not in str(value).replace("\r\n ", "").replace("\n ", ""), name
    html = message.get_body(("html",))
    assert html is not None
    page = _Active()
    page.feed(html.get_content())
    assert not page.tags & {"script", "style", "iframe", "img", "svg", "form", "object", "embed"}
    assert page.handlers == []
    assert all(re.match(r"https?://", u, re.IGNORECASE) for u in page.urls), page.urls
