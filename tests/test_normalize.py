from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.models import Article, ParsedEntry
from aggregator.normalize import canonical_url, content_hash, html_to_text, normalize_entry

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
FEED = "https://example.com/feed.xml"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # host, scheme, port
        ("https://Example.COM/Story", "https://example.com/Story"),
        ("http://example.com/a", "https://example.com/a"),
        ("HTTPS://example.com/a", "https://example.com/a"),
        ("http://example.com:80/a", "https://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("http://[2001:db8::1]:8080/a", "https://[2001:db8::1]:8080/a"),
        # path
        ("https://example.com", "https://example.com/"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/a/b/", "https://example.com/a/b"),
        ("  https://example.com/a  ", "https://example.com/a"),
        # fragment
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a?b=1#top", "https://example.com/a?b=1"),
        # tracking parameters, every kind
        ("https://example.com/a?utm_source=rss", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x&utm_term=y"
            "&utm_content=z",
            "https://example.com/a",
        ),
        ("https://example.com/a?UTM_Source=rss", "https://example.com/a"),
        ("https://example.com/a?fbclid=IwAR0abc", "https://example.com/a"),
        ("https://example.com/a?gclid=Cj0KCQ", "https://example.com/a"),
        ("https://example.com/a?mc_cid=12ab&mc_eid=34cd", "https://example.com/a"),
        ("https://example.com/a?igshid=MzRlODBi", "https://example.com/a"),
        ("https://example.com/a?ncid=rss_feed", "https://example.com/a"),
        ("https://example.com/a?id=7&utm_source=rss&fbclid=x", "https://example.com/a?id=7"),
        # AMP folding
        ("https://example.com/news/story/amp/", "https://example.com/news/story"),
        ("https://example.com/news/story/amp", "https://example.com/news/story"),
        ("https://example.com/news/story.amp.html", "https://example.com/news/story.html"),
        ("https://amp.example.com/news/story", "https://example.com/news/story"),
        ("https://example.com/news/story?amp", "https://example.com/news/story"),
        ("https://example.com/news/story?amp=1", "https://example.com/news/story"),
        ("https://example.com/news/ampersand", "https://example.com/news/ampersand"),
        ("https://example.com/news/example.html", "https://example.com/news/example.html"),
        ("https://ampere.example.com/x", "https://ampere.example.com/x"),
        # query order
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?z=1&m=2&a=3", "https://example.com/a?a=3&m=2&z=1"),
        # not web links, or not links at all
        ("mailto:editor@example.com", None),
        ("javascript:alert(1)", None),
        ("ftp://example.com/file", None),
        ("file:///etc/passwd", None),
        ("data:text/html,hi", None),
        ("not a url", None),
        ("/relative/without/base", None),
        ("http://", None),
        ("http://[broken/a", None),
        ("http://example.com:99999/a", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected
    if expected is not None:
        assert canonical_url(expected) == expected  # a canonical URL is its own canonical form


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/b/c", "https://example.com/a/", "https://example.com/b/c"),
        ("c?x=1#f", "https://example.com/a/b", "https://example.com/a/c?x=1"),
        ("../c", "https://example.com/a/b/index.html", "https://example.com/a/c"),
        ("//cdn.example.org/x", "https://example.com/", "https://cdn.example.org/x"),
        ("https://other.example/x", "https://example.com/", "https://other.example/x"),
    ],
)
def test_canonical_url_resolves_relative_links(url: str, base: str, expected: str) -> None:
    assert canonical_url(url, base=base) == expected


@pytest.mark.parametrize("url", ["http://[broken/a", "https://[::1/a", "http://]x[/"])
def test_canonical_url_of_garbage_with_a_base_is_none(url: str) -> None:
    assert canonical_url(url, base="https://example.com/") is None


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTP://amp.Example.com:80/a/amp/?utm_source=x&b=2&a=1#f")
    assert once == "https://example.com/a?a=1&b=2"
    assert canonical_url(once) == once


def test_http_and_https_versions_are_the_same_page() -> None:
    assert canonical_url("http://example.com/a?x=1") == canonical_url("https://example.com/a?x=1")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("Plain words", "Plain words"),
        ("<p>Hello <b>bold</b> <a href='x'>link</a></p>", "Hello bold link"),
        ("<script>alert('x')</script>Visible", "Visible"),
        ("<style>p { color: red }</style>Visible", "Visible"),
        ("Before<script type='text/javascript'>var a = 1;</script> after", "Before after"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&lt;not a tag&gt;", "<not a tag>"),
        ("caf&eacute; &#233; &#x00e9;", "café é é"),
        ("&amp;lt;", "&lt;"),
        ("a\n\n  b\t\tc  ", "a b c"),
        ("<p>  spaced   out  </p>", "spaced out"),
        ("x&nbsp;&nbsp;y", "x y"),
        ("<img src='x.png' alt='pic'>", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_html_to_text(html: str | None, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>First paragraph.</p><p>Second one.</p>", "First paragraph. Second one."),
        ("line one<br>line two", "line one line two"),
        ("<ul><li>apples</li><li>pears</li></ul>", "apples pears"),
        ("<h2>Heading</h2>Body text", "Heading Body text"),
        # inline markup inside a word must not split it
        ("un<b>believ</b>able <em>news</em>", "unbelievable news"),
        ("<p>pre<span>fix</span></p>", "prefix"),
    ],
)
def test_html_to_text_keeps_words_of_separate_blocks_apart(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def entry(**fields: object) -> ParsedEntry:
    values: dict[str, object] = {
        "guid": "tag:example.com,2025:1",
        "link": "https://example.com/story?utm_source=rss",
        "title": "A title",
        "summary": "<p>A summary.</p>",
        "published": NOW - timedelta(hours=1),
    }
    values.update(fields)
    return ParsedEntry(**values)  # type: ignore[arg-type]


def normalize(e: ParsedEntry, feed_link: str | None = "https://example.com/") -> Article | None:
    return normalize_entry(e, feed_url=FEED, feed_link=feed_link, now=NOW)


def test_normalize_entry_full() -> None:
    article = normalize(entry(title="<b>Big</b> &amp; news"))
    assert article is not None
    assert article.feed_url == FEED
    assert article.guid == "tag:example.com,2025:1"
    assert article.url == "https://example.com/story?utm_source=rss"
    assert article.canonical_url == "https://example.com/story"
    assert article.title == "Big & news"
    assert article.summary == "A summary."
    assert article.published == NOW - timedelta(hours=1)
    assert article.first_seen == NOW


def test_relative_link_resolved_against_feed_link() -> None:
    article = normalize(entry(link="/2025/story"), feed_link="https://example.com/blog/")
    assert article is not None
    assert article.url == "https://example.com/2025/story"
    assert article.canonical_url == "https://example.com/2025/story"


def test_malformed_link_gives_article_without_canonical_url() -> None:
    """One broken link in a feed is the item's problem, never an exception for the whole feed."""
    article = normalize(entry(link="http://[broken/a"), feed_link="https://example.com/")
    assert article is not None
    assert article.canonical_url is None
    assert article.item_key == "guid:tag:example.com,2025:1"


def test_published_missing_is_first_seen() -> None:
    article = normalize(entry(published=None))
    assert article is not None
    assert article.published == NOW


@pytest.mark.parametrize("ahead", [timedelta(minutes=11), timedelta(days=2), timedelta(days=400)])
def test_published_far_in_the_future_is_first_seen(ahead: timedelta) -> None:
    article = normalize(entry(published=NOW + ahead))
    assert article is not None
    assert article.published == NOW


@pytest.mark.parametrize("ahead", [timedelta(minutes=2), timedelta(minutes=9, seconds=59)])
def test_published_slightly_ahead_is_kept(ahead: timedelta) -> None:
    article = normalize(entry(published=NOW + ahead))
    assert article is not None
    assert article.published == NOW + ahead


def test_old_published_is_kept() -> None:
    old = datetime(2019, 1, 1, tzinfo=UTC)
    article = normalize(entry(published=old))
    assert article is not None
    assert article.published == old


@pytest.mark.parametrize("title", [None, "", "   ", "<b></b>"])
def test_title_missing_taken_from_summary(title: str | None) -> None:
    article = normalize(entry(title=title, summary="<p>Council approves the new bridge.</p>"))
    assert article is not None
    assert article.title == "Council approves the new bridge."
    assert article.summary == "Council approves the new bridge."


def test_title_from_long_summary_is_clipped_at_a_word() -> None:
    summary = " ".join(["word"] * 100)
    article = normalize(entry(title=None, summary=summary))
    assert article is not None
    assert len(article.title) <= 120
    assert article.title.endswith("…")
    assert article.title[:-1].split() == ["word"] * len(article.title[:-1].split())


def test_title_and_summary_missing_falls_back_to_link() -> None:
    article = normalize(entry(title=None, summary=None))
    assert article is not None
    assert article.title == "https://example.com/story"


@pytest.mark.parametrize("guid", [None, "some-guid"])
def test_nothing_to_show_is_none(guid: str | None) -> None:
    assert normalize(entry(guid=guid, title=None, summary=None, link=None)) is None
    assert normalize(entry(guid=guid, title=" ", summary="<p></p>", link="")) is None


def test_long_title_is_clipped() -> None:
    article = normalize(entry(title="word " * 300))
    assert article is not None
    assert len(article.title) <= 500
    assert article.title.endswith("…")


def test_content_hash_is_stable_and_ignores_case() -> None:
    assert content_hash("Bridge opens", "The new bridge") == content_hash(
        "Bridge opens", "The new bridge"
    )
    assert content_hash("Bridge opens", "The new bridge") == content_hash(
        "BRIDGE OPENS", "the NEW bridge"
    )
    assert content_hash("Bridge opens", "") != content_hash("Bridge closes", "")
    # title and summary are kept apart: moving text between them is a different item
    assert content_hash("a b", "c") != content_hash("a", "b c")


def test_normalized_hash_ignores_markup_case_and_spacing() -> None:
    one = normalize(entry(guid=None, link=None, title="Bridge  Opens", summary="<p>Today.</p>"))
    two = normalize(entry(guid=None, link=None, title="bridge opens", summary="TODAY."))
    other = normalize(entry(guid=None, link=None, title="Bridge closes", summary="Today."))
    assert one is not None and two is not None and other is not None
    assert one.content_hash == two.content_hash
    assert one.content_hash != other.content_hash


def test_content_hash_does_not_depend_on_time_or_feed() -> None:
    a = normalize_entry(entry(), feed_url=FEED, feed_link=None, now=NOW)
    b = normalize_entry(
        entry(published=None), feed_url="https://other.example/rss", feed_link=None, now=NOW
    )
    assert a is not None and b is not None
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    ("guid", "link", "expected_kind"),
    [
        ("abc-123", "https://example.com/a", "guid"),
        (None, "https://example.com/a", "link"),
        ("  ", "https://example.com/a", "link"),
        (None, None, "hash"),
        (None, "mailto:x@example.com", "hash"),
    ],
)
def test_item_key_prefers_guid_then_link_then_hash(
    guid: str | None, link: str | None, expected_kind: str
) -> None:
    article = normalize(entry(guid=guid, link=link), feed_link=None)
    assert article is not None
    expected = {
        "guid": "guid:abc-123",
        "link": "link:https://example.com/a",
        "hash": f"hash:{article.content_hash}",
    }[expected_kind]
    assert article.item_key == expected


def test_item_key_of_tracking_variants_is_the_same() -> None:
    a = normalize(entry(guid=None, link="http://example.com/a?utm_source=x"))
    b = normalize(entry(guid=None, link="https://example.com/a#comments"))
    assert a is not None and b is not None
    assert a.item_key == b.item_key


def test_item_key_on_article_values() -> None:
    base = Article(
        feed_url=FEED,
        guid="g",
        url="https://example.com/a",
        canonical_url="https://example.com/a",
        title="t",
        summary="",
        published=NOW,
        first_seen=NOW,
        content_hash="h" * 32,
    )
    assert base.item_key == "guid:g"
    assert replace(base, guid=None).item_key == "link:https://example.com/a"
    assert replace(base, guid=None, canonical_url=None).item_key == "hash:" + "h" * 32


def test_control_characters_never_reach_the_terminal() -> None:
    assert html_to_text("\x1b]0;pwned\x07Evil &#27;[31mred") == "]0;pwned Evil [31mred"
    assert "\x9b" not in html_to_text("a\x9bb")
