"""Search with highlighted matches, and the coloured tables on a terminal (plain when piped),
on the offline example's database through the real CLI, and through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from rich.console import Console

from aggregator.models import ArticleView, Highlight
from aggregator.terminal import MATCH_STYLE, article_table, highlighted

from .conftest import OFFLINE, offline

ROOT = Path(__file__).resolve().parent.parent


def search(runner: CliRunner, db: Path, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(offline(runner, db, *args, "--json").stdout)
    return found


def marked(part: dict[str, Any]) -> list[str]:
    return [part["text"][start:end] for start, end in part["spans"]]


def test_search_marks_where_each_article_matched(offline_db: Path, runner: CliRunner) -> None:
    found = search(runner, offline_db, "search", "central bank")
    assert len(found) >= 3
    for article in found:
        title, snippet = article["match"]["title"], article["match"]["snippet"]
        assert title["text"] == article["title"]
        words = marked(title) + marked(snippet)
        assert words, article["title"]  # every result shows where it matched
        for word in words:  # a phrase's words side by side are one span
            assert word.casefold() in {"central", "bank", "central bank"}, word
    assert any(
        "central bank" in [w.casefold() for w in marked(a["match"]["snippet"])] for a in found
    )


def test_articles_with_a_query_is_search_within_the_window(
    offline_db: Path, runner: CliRunner
) -> None:
    everything = search(runner, offline_db, "search", "ceasefire")
    within = search(runner, offline_db, "articles", "ceasefire", "--since", "all")
    assert within == everything and everything
    plain = search(runner, offline_db, "articles", "--since", "all", "--limit", "0")
    assert all("match" not in a for a in plain)  # no query, nothing to highlight
    assert {a["id"] for a in everything} < {a["id"] for a in plain}


def test_search_text_shows_the_matching_passage_and_no_escape_codes_when_piped(
    offline_db: Path, runner: CliRunner
) -> None:
    out = offline(runner, offline_db, "search", "central bank").stdout
    assert "\x1b" not in out and "\x02" not in out
    assert "after the central bank moved its benchmark" in " ".join(out.split())


def test_a_highlight_styles_exactly_its_spans() -> None:
    text = highlighted(Highlight("the central bank moved", ((4, 16),)))
    spans = [(s.start, s.end, str(s.style)) for s in text.spans]
    assert spans == [(4, 16, MATCH_STYLE)]
    console = Console(force_terminal=True, color_system="standard", width=80)
    with console.capture() as capture:
        console.print(text)
    assert capture.get().startswith("the \x1b[1;30;43mcentral bank\x1b[0m moved")


def test_feed_text_in_a_table_is_never_markup() -> None:
    article = ArticleView(
        id=1,
        title="Headline [b]not bold[/b] [link=javascript:alert(1)]x[/link]",
        url=None,
        feed="Daily [/b] News",
        published=datetime(2026, 11, 24, tzinfo=UTC),
        first_seen=datetime(2026, 11, 24, tzinfo=UTC),
        story_id=None,
    )
    console = Console(force_terminal=True, width=200)
    with console.capture() as capture:
        console.print(article_table([article]))
    out = capture.get()
    assert "Daily [/b] News" in out  # a closing tag that opened nothing: rich would raise
    assert "Headline [b]not bold[/b] [link=javascript:alert(1)]x[/link]" in out
    assert "\x1b]8;" not in out  # no terminal hyperlink


def test_a_window_limits_search_and_articles_with_a_query(
    offline_db: Path, runner: CliRunner
) -> None:
    everything = search(runner, offline_db, "search", "ceasefire")
    old = everything[0]["id"]
    with sqlite3.connect(offline_db) as db:  # seen two days ago
        db.execute(
            "UPDATE articles SET first_seen = '2026-01-01T00:00:00+00:00' WHERE id = ?", [old]
        )
    db.close()
    for command in ("search", "articles"):
        recent = search(runner, offline_db, command, "ceasefire", "--since", "24h")
        assert [a["id"] for a in recent] == [a["id"] for a in everything if a["id"] != old]
    assert search(runner, offline_db, "articles", "ceasefire", "--since", "all") == everything


def run_on(db: Path, args: list[str], *, terminal: bool) -> str:
    """The real command in a subprocess, its stdout on a pseudo-terminal or on a pipe."""
    command = [sys.executable, "-m", "cli", "--config", str(OFFLINE), "--db", str(db), *args]
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    if not terminal:
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True).stdout
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: Linux says EIO
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return b"".join(chunks).decode()


def test_stories_is_a_coloured_table_on_a_terminal_and_plain_text_when_piped(
    offline_db: Path,
) -> None:
    args = ["stories", "--since", "all", "--limit", "3"]
    coloured = run_on(offline_db, args, terminal=True)
    piped = run_on(offline_db, args, terminal=False)
    assert "\x1b[" in coloured and "\x1b" not in piped
    header = next(line for line in coloured.splitlines() if "headline" in line)
    for column in ("id", "status", "unread", "headline", "last seen"):
        assert column in header
    assert "[30] Quillon unveils" in piped  # the plain listing, as before
    assert "Quillon unveils" in coloured


def test_search_on_a_terminal_highlights_the_matched_words(offline_db: Path) -> None:
    out = run_on(offline_db, ["search", "ceasefire"], terminal=True)
    # Black on yellow (30;43), the match's style, starts right before each time the word is
    # shown: in headlines, and in the passages of summaries (dimmed there: 2).
    found = re.findall(r"\x1b\[([0-9;]*)m[Cc]easefire", out)
    assert len(found) >= 4 and all(style.endswith("30;43") for style in found), found
    assert "1;30;43" in found and "1;2;30;43" in found
