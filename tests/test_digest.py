"""What goes into a digest (aggregator.digest, pure), the message it becomes (aggregator.mail),
and the printed digest's state through the CLI on the offline example."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import EmailConfig
from aggregator.digest import choose_entries, digest_window, one_line, subject_line
from aggregator.mail import compose
from aggregator.models import ArticleView, Digest, DigestEntry, StoryView
from cli import cli

from .conftest import EXAMPLES

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MAIL = EmailConfig(smtp_host="127.0.0.1", to=("me@example.org",), from_addr="news@example.org")


def story(id: int, sources: int, title: str = "Harbour bridge vote", url: str = "") -> StoryView:
    names = tuple(f"Outlet {n}" for n in range(sources))
    articles = tuple(
        ArticleView(
            id * 100 + n,
            f"{title} ({name})",
            url or f"https://outlet{n}.example/{id}",
            name,
            NOW - timedelta(hours=1),
            NOW - timedelta(hours=1),
            id,
        )
        for n, name in enumerate(names)
    )
    return StoryView(
        id, title, sources, names, NOW, NOW, ("bridge", "vote"), articles, status="new"
    )


def digest(*entries: DigestEntry) -> Digest:
    return Digest(NOW, NOW - timedelta(hours=24), entries, ())


# --- choosing ---------------------------------------------------------------------------------


def test_the_window_reaches_back_to_the_last_digest_and_at_least_digest_since() -> None:
    day = timedelta(hours=24)
    assert digest_window(NOW, None, day) == NOW - day  # a first digest
    assert digest_window(NOW, NOW - timedelta(hours=1), day) == NOW - day
    assert digest_window(NOW, NOW - timedelta(days=3), day) == NOW - timedelta(days=3)
    assert digest_window(NOW, NOW - timedelta(days=3), None) is None  # digest.since: all


def test_new_and_grown_stories_are_chosen_in_rank_order_and_the_rest_left_out() -> None:
    ranked = [story(1, 4), story(2, 3), story(3, 2), story(4, 5)]
    shown = {1: 4, 2: 2, 4: 6}  # 1 unchanged, 2 grew by one, 3 is new, 4 lost a source
    entries = choose_entries(ranked, shown, limit=0)
    assert [(e.story.id, e.earlier_sources, e.added_sources) for e in entries] == [
        (2, 2, 1),
        (3, None, 0),
    ]
    assert entries[0].grown and not entries[1].grown
    assert [e.story.id for e in choose_entries(ranked, shown, limit=1)] == [2]


def test_an_explicit_window_shows_everything_still_marking_growth() -> None:
    entries = choose_entries([story(1, 4), story(2, 3)], {1: 4, 2: 2}, limit=0, everything=True)
    assert [(e.story.id, e.grown) for e in entries] == [(1, False), (2, True)]


# --- subjects and headers ---------------------------------------------------------------------


def test_subject_placeholders() -> None:
    found = digest(DigestEntry(story(1, 3, "Bridge vote passes")), DigestEntry(story(2, 4), 2))
    template = "{date} {stories}: {count}, {new} new, {grown} grown, led by {top}"
    assert subject_line(template, found) == (
        "2026-11-24 2 stories: 2, 1 new, 1 grown, led by Bridge vote passes"
    )
    assert subject_line("{stories}", digest(DigestEntry(story(1, 2)))) == "1 story"


def test_a_long_headline_is_shortened_in_the_subject() -> None:
    title = "Council " + "really " * 30 + "votes"
    subject = subject_line("{top}", digest(DigestEntry(story(1, 2, title))))
    assert len(subject) <= 80 and subject.endswith("…") and subject.startswith("Council really")


@pytest.mark.parametrize(
    "title", ["Bridge\r\nBcc: victim@example.org", "Bridge\u2028vote", "Bridge\x00\x1b[31m vote"]
)
def test_a_headline_cannot_break_a_header(title: str) -> None:
    message = compose(digest(DigestEntry(story(1, 2, title))), MAIL, "me@example.org", links=3)
    data = message.as_bytes()
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Bcc"] is None
    subject = str(parsed["Subject"])
    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject
    assert "Bridge" in subject
    header_block = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = [line.split(":", 1)[0] for line in header_block.split("\r\n") if line[:1] != " "]
    assert names.count("Subject") == 1 and "Bcc" not in names


@given(st.text(max_size=300))
def test_any_headline_gives_a_one_line_subject(title: str) -> None:
    subject = subject_line(MAIL.subject, digest(DigestEntry(story(1, 2, title))))
    assert not re.search(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", subject)
    assert one_line(subject) == subject


class _Active(HTMLParser):
    """Collects what would be active content: tags, event handlers, URL schemes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(name)
            if name in ("href", "src", "action", "formaction"):
                self.urls.append(value or "")


def test_the_mailed_html_has_no_active_content() -> None:
    evil = story(
        1,
        2,
        '<script>alert(1)</script><form action="https://evil.example"><input></form>',
        url="javascript:alert(1)",
    )
    fine = story(2, 2, "Fine <img src=x onerror=alert(2)>")
    message = compose(digest(DigestEntry(evil), DigestEntry(fine)), MAIL, "me@x.org", links=3)
    body = message.get_body(("html",))
    assert body is not None
    html = body.get_content()
    page = _Active()
    page.feed(html)
    assert not page.tags & {"script", "form", "input", "img", "iframe", "object", "style"}
    assert page.handlers == []
    assert page.urls and all(url.startswith("https://outlet") for url in page.urls)
    assert "&lt;script&gt;" in html  # the headline is shown as text


# --- the printed digest's state, through the CLI ----------------------------------------------


def test_a_merge_of_two_shown_stories_comes_again_only_with_the_sources_it_gained(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    base = ["--config", str(EXAMPLES / "offline.yaml"), "--db", str(tmp_path / "x.db")]

    def aggregator(*args: str) -> str:
        result = runner.invoke(cli, [*base, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    first = aggregator("run")
    assert first.startswith("aggregator digest: 5 stories")
    listed = json.loads(aggregator("stories", "--json"))
    # Two stories whose outlets differ, so the merged story has more sources than either.
    a, b = next(
        (a, b)
        for a in listed
        for b in listed
        if a["id"] < b["id"]
        and set(b["source_names"]) - set(a["source_names"])
        and set(a["source_names"]) - set(b["source_names"])
    )
    union = set(a["source_names"]) | set(b["source_names"])
    gained = len(union) - max(a["sources"], b["sources"])
    aggregator("story", "merge", str(a["id"]), str(b["id"]))
    again = aggregator("digest")
    assert again.startswith("aggregator digest: 1 story (1 grown)")
    assert f"+{gained} source{'s' if gained > 1 else ''} since your last digest" in again
    assert f"{len(union)} sources:" in again
    assert "Nothing new." in aggregator("digest")
