"""Reading through the CLI: read and unread state, the --unread, --feed and --tag filters, and
`open`, on the offline example's database (a real SQLite file, the real CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cli import cli

from .conftest import OFFLINE, offline


def stories(runner: CliRunner, db: Path, *args: str) -> list[dict[str, Any]]:
    out = offline(runner, db, "stories", "--json", "--since", "all", "--limit", "0", *args)
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


def test_reading_a_story_marks_its_articles_and_their_copies_read(
    offline_db: Path, runner: CliRunner
) -> None:
    before = stories(runner, offline_db)
    assert all(s["unread"] == s["size"] for s in before)
    first = before[0]
    result = offline(runner, offline_db, "read", str(first["id"]))
    assert result.stderr == "" and result.stdout == f"{first['size']} articles marked read\n"
    after = {s["id"]: s for s in stories(runner, offline_db)}
    assert after[first["id"]]["unread"] == 0
    assert all(a["read"] for a in after[first["id"]]["articles"])
    assert first["id"] not in [s["id"] for s in stories(runner, offline_db, "--unread")]
    assert len(stories(runner, offline_db, "--unread")) == len(before) - 1
    again = offline(runner, offline_db, "read", str(first["id"]))
    assert again.stdout == "0 articles marked read\n"  # nothing changed the second time
    offline(runner, offline_db, "unread", str(first["id"]))
    assert len(stories(runner, offline_db, "--unread")) == len(before)


def test_reading_one_article_leaves_its_story_unread(offline_db: Path, runner: CliRunner) -> None:
    story = stories(runner, offline_db)[0]
    article = story["articles"][0]["id"]
    assert offline(runner, offline_db, "read", "--article", str(article)).stdout == (
        "1 article marked read\n"
    )
    again = {s["id"]: s for s in stories(runner, offline_db)}[story["id"]]
    assert again["unread"] == story["size"] - 1
    assert [a["read"] for a in again["articles"]].count(True) == 1


@pytest.mark.parametrize("args", [["read", "999999"], ["read", "--article", "999999"]])
def test_reading_an_unknown_id_is_a_clear_error_and_changes_nothing(
    offline_db: Path, runner: CliRunner, args: list[str]
) -> None:
    result = runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(offline_db), *args])
    assert result.exit_code == 1 and "999999" in result.stderr
    assert "Traceback" not in result.output
    assert all(s["unread"] == s["size"] for s in stories(runner, offline_db))


def test_stories_by_feed_and_by_tag(offline_db: Path, runner: CliRunner) -> None:
    every = stories(runner, offline_db)
    for story in every:
        one = story["source_names"][0]
        by_feed = [s["id"] for s in stories(runner, offline_db, "--feed", one)]
        assert story["id"] in by_feed
        assert all(one in s["source_names"] for s in stories(runner, offline_db, "--feed", one))
    local = stories(runner, offline_db, "--tag", "local")
    world = stories(runner, offline_db, "--tag", "world")
    assert 0 < len(local) < len(every) and 0 < len(world) <= len(every)
    assert stories(runner, offline_db, "--tag", "no-such-tag") == []
    both = {s["id"] for s in stories(runner, offline_db, "--tag", "local", "--tag", "business")}
    assert {s["id"] for s in local} <= both


def test_open_launches_the_first_link_and_marks_it_read(
    offline_db: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[str] = []
    monkeypatch.setattr(click, "launch", lambda url, **kwargs: launched.append(url) or 0)
    story = stories(runner, offline_db)[0]
    result = offline(runner, offline_db, "open", str(story["id"]))
    first = next(a for a in story["articles"] if a["url"])
    assert launched == [first["url"]] and result.stdout == first["url"] + "\n"
    again = {s["id"]: s for s in stories(runner, offline_db)}[story["id"]]
    assert again["unread"] == story["size"] - 1
