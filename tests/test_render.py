from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from aggregator.models import (
    ArticleView,
    DeliveryOutcome,
    Digest,
    DigestEntry,
    FeedHealth,
    FeedView,
    StoryStatus,
    StoryView,
    SummarySentence,
)
from aggregator.render import plural, render_digest, render_feeds, render_stories, when

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
URL_LINE = re.compile(r"^\s*https?://\S+$")


def view(
    id: int,
    title: str,
    feed: str,
    url: str | None,
    minutes_ago: int,
) -> ArticleView:
    when = NOW - timedelta(minutes=minutes_ago)
    return ArticleView(
        id=id,
        title=title,
        url=url,
        feed=feed,
        published=when,
        first_seen=when,
        story_id=1,
    )


def story(
    title: str,
    articles: tuple[ArticleView, ...],
    *,
    id: int = 1,
    terms: tuple[str, ...] = ("bridge", "council", "vote"),
) -> StoryView:
    sources = tuple(dict.fromkeys(a.feed for a in articles))
    return StoryView(
        id=id,
        title=title,
        size=len(articles),
        sources=sources,
        first_seen=min(a.first_seen for a in articles),
        last_seen=max(a.first_seen for a in articles),
        terms=terms,
        status="new",
        articles=articles,
    )


BRIDGE = story(
    "Council votes to replace the old harbour bridge after years of debate about its cost",
    (
        view(1, "Council backs new bridge", "Harbour Gazette", "https://gazette.example/1", 300),
        view(2, "Bridge vote: what it means", "Harbour Gazette", "https://gazette.example/2", 200),
        view(3, "Old bridge to go", "City Wire", "https://wire.example/bridge", 250),
        view(4, "Bridge replacement approved", "Daily Post", "https://post.example/b", 100),
        view(5, "Why the bridge matters", "Evening Star", "https://star.example/b", 50),
    ),
)
FERRY = story(
    "Ferry strike ends",
    (
        view(6, "Ferry crews return", "City Wire", "https://wire.example/ferry", 30),
        view(7, "Strike over", "Daily Post", "https://post.example/ferry", 20),
    ),
    id=2,
    terms=("ferry", "strike"),
)


def digest(*stories: StoryView, failing: tuple[tuple[str, str], ...] = ()) -> Digest:
    return Digest(
        generated_at=NOW,
        since=NOW - timedelta(hours=24),
        entries=tuple(DigestEntry(s) for s in stories),
        failing_feeds=failing,
    )


# --- text --------------------------------------------------------------------------------------


def long_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > 72 and not URL_LINE.match(line)]


def test_text_digest_content() -> None:
    text = render_digest(digest(BRIDGE, FERRY), "text")
    assert "Council votes to replace the old harbour bridge" in text
    assert "Ferry strike ends" in text
    assert "4 sources: Harbour Gazette, City Wire, Daily Post, Evening Star" in text
    assert "2 sources: City Wire, Daily Post" in text
    assert "bridge, council, vote" in text
    assert "ferry, strike" in text
    assert text.index("Council votes") < text.index("Ferry strike ends")
    assert "Nothing new." not in text


def test_text_links_earliest_first_one_per_outlet_at_most_three() -> None:
    text = render_digest(digest(BRIDGE), "text")
    urls = re.findall(r"https?://\S+", text)
    # Harbour Gazette's earliest (300 min ago), then City Wire (250), then Daily Post (100).
    assert urls == [
        "https://gazette.example/1",
        "https://wire.example/bridge",
        "https://post.example/b",
    ]


@pytest.mark.parametrize("links", [1, 2, 3])
def test_text_link_count_follows_option(links: int) -> None:
    text = render_digest(digest(BRIDGE), "text", links=links)
    assert len(re.findall(r"https?://\S+", text)) == links


def test_text_many_sources_are_summarised() -> None:
    feeds = [f"Outlet {letter}" for letter in "ABCDEFGH"]
    many = story(
        "Big story",
        tuple(
            view(i, f"Take {i}", feed, f"https://{i}.example/", 100 - i)
            for i, feed in enumerate(feeds)
        ),
    )
    text = render_digest(digest(many), "text")
    folded = " ".join(text.split())  # the line may wrap
    expected = "8 sources: Outlet A, Outlet B, Outlet C, Outlet D, Outlet E, Outlet F and 2 more"
    assert expected in folded
    assert len(re.findall(r"https?://\S+", text)) == 3


def test_text_single_article_story_has_one_link() -> None:
    solo = story("Solo", (view(9, "Alone", "Only Feed", "https://only.example/a", 5),))
    text = render_digest(digest(solo), "text")
    assert re.findall(r"https?://\S+", text) == ["https://only.example/a"]
    assert "1 source: Only Feed" in text


def test_text_lines_fit_72_columns() -> None:
    wordy = story(
        "A remarkably long headline that keeps going well past the width of a terminal line "
        "because the outlet wrote a whole paragraph as its title",
        (
            view(
                1,
                "An equally long article title that needs wrapping since it is far longer than "
                "seventy-two characters",
                "A Feed With A Rather Long Name Indeed",
                "https://example.com/" + "segment/" * 12 + "end",
                10,
            ),
        ),
        terms=("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"),
    )
    failing = (
        ("Flaky Feed", "connection refused after three attempts to reach the server at port 443"),
    )
    text = render_digest(digest(wordy, BRIDGE, failing=failing), "text")
    assert long_lines(text) == []
    # the long URL is kept whole on its own line
    assert any(
        line.strip() == "https://example.com/" + "segment/" * 12 + "end"
        for line in text.splitlines()
    )


def test_text_footer_with_long_feed_url_fits_72_columns() -> None:
    """A feed without a title is named by its URL, and its error often repeats it."""
    url = "https://www.example-newspaper.co.uk/news/world/europe/rss.xml?edition=international"
    failing = ((url, f"{url}: HTTP 500 Internal Server Error"),)
    text = render_digest(digest(FERRY, failing=failing), "text")
    assert long_lines(text) == []
    assert url in text


def test_text_empty_digest_says_nothing_new() -> None:
    text = render_digest(digest(), "text")
    assert "Nothing new." in text
    assert "0 stories" in text
    assert text.endswith("\n")
    assert long_lines(text) == []


def test_text_header_counts_stories() -> None:
    assert "1 story" in render_digest(digest(FERRY), "text")
    assert "2 stories" in render_digest(digest(BRIDGE, FERRY), "text")


def test_text_failing_feeds_footer() -> None:
    failing = (("Broken Feed", "HTTP 500"), ("https://gone.example/rss", "410 Gone"))
    text = render_digest(digest(FERRY, failing=failing), "text")
    footer = text[text.index("failing") :]
    assert "Broken Feed: HTTP 500" in footer
    assert "https://gone.example/rss: 410 Gone" in footer
    assert text.index("Ferry strike ends") < text.index("Broken Feed")


def test_text_no_footer_without_failing_feeds() -> None:
    assert "failing" not in render_digest(digest(FERRY), "text").lower()


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", None]
)
def test_text_only_web_links(url: str | None) -> None:
    odd = story("Odd links", (view(1, "Odd", "Odd Feed", url, 10),))
    text = render_digest(digest(odd), "text")
    assert "javascript:" not in text
    assert "data:" not in text
    assert "file:" not in text


# --- markdown ----------------------------------------------------------------------------------


def test_markdown_escapes_markup_in_titles() -> None:
    tricky = story(
        "*Breaking* _news_: [click](https://evil.example) `code` # not a heading <b>",
        (view(1, "Title with ] and [ and *stars*", "Feed_Name", "https://ok.example/a", 5),),
    )
    md = render_digest(digest(tricky), "markdown")
    assert "*Breaking*" not in md.replace("\\*Breaking\\*", "")
    assert "\\*Breaking\\*" in md
    assert "\\_news\\_" in md
    assert "\\[click\\]\\(https://evil.example\\)" in md
    assert "\\`code\\`" in md
    assert "\\<b\\>" in md
    assert "\\*stars\\*" in md
    assert "Feed\\_Name" in md
    # the only real link is the article's
    assert re.findall(r"(?<!\\)\]\((?!\\)", md) == ["]("]
    assert "(<https://ok.example/a>)" in md


def test_markdown_structure() -> None:
    md = render_digest(digest(BRIDGE, FERRY, failing=(("Broken", "HTTP 500"),)), "markdown")
    lines = md.splitlines()
    assert lines[0].startswith("# ")
    assert sum(1 for line in lines if line.startswith("## ")) == 2
    assert md.count("](<https://") == 3 + 2
    assert "Broken: HTTP 500" in md
    assert "`bridge`" in md


def test_markdown_empty() -> None:
    assert "Nothing new." in render_digest(digest(), "markdown")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd"])
def test_markdown_only_web_links(url: str) -> None:
    odd = story("Odd", (view(1, "Odd", "Odd Feed", url, 10),))
    md = render_digest(digest(odd), "markdown")
    assert url.split(":")[0] + ":" not in md


def test_markdown_link_url_cannot_smuggle_markup() -> None:
    """``<`` and ``>`` end an angle-bracket link target: left raw, the rest becomes inline HTML."""
    url = "https://evil.example/a?q=<script>alert(1)</script>"
    odd = story("Odd", (view(1, "Odd", "Odd Feed", url, 10),))
    md = render_digest(digest(odd), "markdown")
    assert "<script>" not in md
    assert "https://evil.example/a" in md


# --- html --------------------------------------------------------------------------------------


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def collect(html: str) -> Collector:
    parser = Collector()
    parser.feed(html)
    parser.close()
    return parser


def test_html_escapes_feed_text() -> None:
    evil = story(
        "<script>alert('story')</script> & friends",
        (
            view(
                1,
                "<img src=x onerror=alert(1)>",
                "<b>Feed</b>",
                'https://ok.example/a?x=1&y="2"',
                5,
            ),
        ),
        terms=("<i>term</i>",),
    )
    html = render_digest(
        digest(evil, failing=(("<script>bad</script>", "<svg onload=x>"),)), "html"
    )
    page = collect(html)
    assert "script" not in page.tags
    assert "img" not in page.tags
    assert "svg" not in page.tags
    assert "i" not in page.tags
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    text = "".join(page.text)
    assert "<script>alert('story')</script> & friends" in text
    assert "<img src=x onerror=alert(1)>" in text
    assert page.hrefs == ['https://ok.example/a?x=1&y="2"']


def test_html_links_and_sources() -> None:
    html = render_digest(digest(BRIDGE, FERRY), "html")
    page = collect(html)
    assert page.hrefs == [
        "https://gazette.example/1",
        "https://wire.example/bridge",
        "https://post.example/b",
        "https://wire.example/ferry",
        "https://post.example/ferry",
    ]
    text = " ".join(page.text)
    assert "4 sources: Harbour Gazette, City Wire, Daily Post, Evening Star" in text
    assert "Nothing new." not in text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "//evil.example/x",
    ],
)
def test_html_never_links_other_schemes(url: str) -> None:
    odd = story(
        "Odd links",
        (
            view(1, "Odd", "Odd Feed", url, 10),
            view(2, "Fine", "Fine Feed", "https://fine.example/a", 5),
        ),
    )
    page = collect(render_digest(digest(odd), "html"))
    assert page.hrefs == ["https://fine.example/a"]


def test_html_empty_and_failing() -> None:
    html = render_digest(digest(failing=(("Broken Feed", "HTTP 500"),)), "html")
    text = " ".join(collect(html).text)
    assert "Nothing new." in text
    assert "Broken Feed: HTTP 500" in text
    assert collect(html).hrefs == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="pdf"):
        render_digest(digest(), "pdf")


# --- the shared helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (0, "article", "0 articles"),
        (1, "source", "1 source"),
        (2, "story", "2 stories"),
        (1, "story", "1 story"),
        (1340, "feed", "1,340 feeds"),
        (1_000_000, "digest", "1,000,000 digests"),
        (2, "day", "2 days"),
        (3, "more story", "3 more stories"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_when_is_utc_to_the_minute_and_says_so() -> None:
    assert when(datetime(2026, 11, 24, 20, 39, 59, tzinfo=UTC)) == "2026-11-24 20:39 UTC"
    east = timezone(timedelta(hours=2))
    assert when(datetime(2026, 11, 24, 22, 39, tzinfo=east)) == "2026-11-24 20:39 UTC"
    assert when(datetime(2026, 11, 24, 20, 39)) == "2026-11-24 20:39 UTC"  # naive: UTC


def test_statuses_read_as_their_words_in_text_and_json() -> None:
    found = replace(FERRY, status=StoryStatus.GROWING)
    assert found.to_json()["status"] == "growing"
    assert json.loads(json.dumps(found.to_json()))["status"] == "growing"
    assert '"status": "growing"' in json.dumps(found.to_json())
    assert render_stories([found]).splitlines()[1].startswith("      growing, 2 articles")
    assert f"{FeedHealth.RATE_LIMITED}" == "rate-limited"
    assert str(DeliveryOutcome.NOTHING_NEW) == "nothing new"


def test_feeds_list_counts_with_thousands_separators() -> None:
    """A choice made when the four pluralisers became one: every count a person reads is
    grouped by thousands, the per-feed item count and the totals line included."""
    busy = FeedView(
        url="https://wire.example/feed",
        effective_url=None,
        title="Wire",
        tags=(),
        status=FeedHealth.OK,
        last_success=datetime(2026, 11, 24, 20, 39, tzinfo=UTC),
        last_error=None,
        last_error_at=None,
        error_count=0,
        next_due=None,
        item_count=1500,
        fetch_count=12,
        not_modified_count=3,
        retry_after=None,
        duplicate_of=None,
    )
    text = render_feeds([busy] * 1340)
    assert "last success 2026-11-24 20:39 UTC, next due now, 1,500 items, 25% not modified" in text
    assert text.endswith("1,340 feeds: 1,340 ok\n")


# --- summaries and the compact list ------------------------------------------------------------

SAID = (
    SummarySentence(
        "The council voted 31 to 12 to replace the harbour bridge, ending a decade of debate "
        "over its cost.",
        "City Wire",
        3,
    ),
    SummarySentence("Work on the new bridge starts in the spring.", "Daily Post", 4),
)


def with_more() -> Digest:
    return replace(
        digest(replace(BRIDGE, summary=SAID)), more=(DigestEntry(FERRY, earlier_sources=1),)
    )


def test_text_summary_and_the_compact_list() -> None:
    text = render_digest(with_more(), "text")
    flat = " ".join(text.split())
    for sentence in SAID:
        assert f"“{sentence.text}” ({sentence.feed})" in flat
    assert "aggregator digest: 2 stories (1 new, 1 grown)" in text
    more = text[text.index("1 more story:") :]
    assert "- Ferry strike ends (2 sources)\n  https://wire.example/ferry" in more
    assert "Terms" not in more and "Strike over" not in more  # one line each, one link
    assert not long_lines(text)


def test_markdown_summary_and_the_compact_list() -> None:
    text = render_digest(with_more(), "markdown")
    assert f"> {SAID[1].text} _(Daily Post)_" in text
    assert "## 1 more story:" in text
    assert "- [Ferry strike ends](<https://wire.example/ferry>) (2 sources)" in text


def test_no_summary_no_quote() -> None:
    text = render_digest(digest(FERRY), "text")
    assert "“" not in text and "more stor" not in text
