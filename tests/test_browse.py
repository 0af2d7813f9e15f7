"""The interactive reader (`aggregator browse`) driven by Textual's Pilot on the offline
example's database: what it shows is what the store says, and what it does lands there."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from rich.text import Text
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, Static
from textual.widgets._footer import FooterKey

from aggregator.browse import (
    MIN_SIZE,
    SEARCH_LIMIT,
    STORY_LIMIT,
    ArticleScreen,
    Picker,
    Reader,
    SearchResults,
    StoryList,
    StoryScreen,
)
from aggregator.config import Config, load_config
from aggregator.listing import get_story, ranked_stories
from aggregator.reading import mark
from aggregator.store import Store, open_store

from .conftest import OFFLINE

Scenario = Callable[["Recorder", Pilot[None]], Awaitable[None]]


class Recorder(Reader):
    """The reader, with the links it opens and the notifications it shows written down."""

    def __init__(self, config: Config, store: Store, now: datetime) -> None:
        opened: list[str] = []
        super().__init__(config, store, opener=opened.append, now=now)
        self.opened = opened
        self.notices: list[str] = []

    def notify(self, message: str, **options: Any) -> None:
        self.notices.append(message)
        super().notify(message, **options)


@pytest.fixture
def reading(offline_db: Path) -> Iterator[tuple[Config, Store]]:
    config = load_config(OFFLINE, database=offline_db)
    store = open_store(config.database)
    try:
        yield config, store
    finally:
        store.close()


NOW = datetime.now(UTC)


def drive(config: Config, store: Store, scenario: Scenario) -> Recorder:
    app = Recorder(config, store, NOW)

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await scenario(app, pilot)

    asyncio.run(run())
    return app


def ranked(config: Config, store: Store, **filters: Any) -> list[int]:
    """The story ids the store ranks, as the reader asks for them."""
    found = ranked_stories(
        store,
        since=None,
        min_size=MIN_SIZE,
        limit=STORY_LIMIT,
        now=NOW,
        recent=config.clustering.quiet_after,
        **filters,
    )
    return [s.id for s in found]


def table(app: Reader) -> DataTable[Any]:
    found: DataTable[Any] = app.screen.query_one(DataTable)
    return found


def row_ids(app: Reader) -> list[int]:
    return [int(str(row.key.value)) for row in table(app).ordered_rows]


def row(app: Reader, id: int) -> list[str]:
    return [str(cell) for cell in table(app).get_row(str(id))]


def cursor_id(app: Reader) -> int:
    return row_ids(app)[table(app).cursor_row]


def dimmed(cell: Text) -> bool:
    return any(str(span.style) == "dim" for span in cell.spans)


def shown(app: Reader, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


async def go_to(pilot: Pilot[None], app: Reader, id: int) -> None:
    """Put the cursor on the row of ``id`` (moving it is the table's job, not the reader's)."""
    table(app).move_cursor(row=row_ids(app).index(id), animate=False)
    await pilot.pause()
    assert cursor_id(app) == id


async def pick(pilot: Pilot[None], app: Reader, value: str) -> None:
    """Choose ``value`` in the open picker ("" is its choice that clears the filter)."""
    picker = app.screen
    assert isinstance(picker, Picker)
    picker.query_one(OptionList).highlighted = picker.values.index(value)
    await pilot.press("enter")
    await pilot.pause()


def test_the_list_holds_the_ranked_stories_and_enter_goes_down_a_level(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    expected = ranked(config, store)
    # The best story of three articles or more, so its timeline has a second row to choose.
    biggest = next(s for s in (get_story(store, i) for i in expected) if s.size >= 3)
    assert biggest.articles[1].url

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        assert isinstance(app.screen, StoryList)
        assert row_ids(app) == expected
        assert row(app, biggest.id) == [
            str(biggest.size),  # all unread
            biggest.status,
            str(len(biggest.sources)),
            str(biggest.size),
            biggest.title,
        ]
        assert app.screen.sub_title == f"all stories, all time: {len(expected)} stories"
        # Stories of one article, from one outlet, are there too.
        assert ["1", "1"] in [row(app, id)[2:4] for id in expected]
        await go_to(pilot, app, biggest.id)
        await pilot.press("enter")
        assert isinstance(app.screen, StoryScreen)
        head = shown(app, "#story")
        assert biggest.title in head and ", ".join(biggest.terms) in head
        assert ", ".join(biggest.sources) in head
        # Its summary, each sentence with its outlet.
        assert biggest.summary
        for sentence in biggest.summary:
            assert f"{sentence.text} ({sentence.feed})" in " ".join(head.split())
        assert row_ids(app) == [a.id for a in biggest.articles]
        second = biggest.articles[1]
        assert row(app, second.id)[2:] == [second.feed, second.title]
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ArticleScreen)
        text = shown(app, "#article")
        assert second.title in text and second.feed in text and str(second.url) in text
        assert second.summary in text
        for copy in second.duplicates:
            assert f"{copy.feed}: {copy.url}" in text
        await pilot.press("escape")
        assert isinstance(app.screen, StoryScreen) and cursor_id(app) == second.id
        await pilot.press("backspace")
        assert isinstance(app.screen, StoryList) and cursor_id(app) == biggest.id
        await pilot.press("escape")  # nothing above the list: it stays
        assert isinstance(app.screen, StoryList)
        await pilot.press("q")
        assert not app.is_running

    drive(config, store, scenario)


def test_r_marks_a_story_read_then_unread_and_its_row_shows_it(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    story = get_story(store, ranked(config, store)[1])
    assert story.size >= 1 and story.unread == story.size

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await go_to(pilot, app, story.id)
        await pilot.press("r")
        assert get_story(store, story.id).unread == 0
        assert all(a.read for a in get_story(store, story.id).articles)
        assert row(app, story.id)[0] == ""
        assert dimmed(table(app).get_row(str(story.id))[4])
        assert cursor_id(app) == story.id
        await pilot.press("r")
        assert get_story(store, story.id).unread == story.size
        assert row(app, story.id)[0] == str(story.size)
        assert not dimmed(table(app).get_row(str(story.id))[4])
        assert cursor_id(app) == story.id

    drive(config, store, scenario)


def test_r_on_an_article_marks_that_article_alone(reading: tuple[Config, Store]) -> None:
    config, store = reading
    story = next(s for s in (get_story(store, i) for i in ranked(config, store)) if s.size >= 3)
    second = story.articles[1]

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await go_to(pilot, app, story.id)
        await pilot.press("enter", "down", "r")
        assert [a.read for a in get_story(store, story.id).articles] == [
            a.id == second.id for a in story.articles
        ]
        assert row(app, second.id)[0] == ""  # no unread mark
        assert row(app, story.articles[0].id)[0] == "●"
        assert f"({story.size - 1} unread)" in shown(app, "#story")
        await pilot.press("enter", "r")  # the article's own page: unread again
        assert isinstance(app.screen, ArticleScreen)
        assert "unread" in shown(app, "#article")
        assert get_story(store, story.id).unread == story.size
        await pilot.press("r", "escape")
        assert row(app, second.id)[0] == ""
        await pilot.press("escape")
        assert row(app, story.id)[0] == str(story.size - 1)  # the list heard of it

    drive(config, store, scenario)


def test_s_saves_a_story_or_one_article_and_again_unsaves(reading: tuple[Config, Store]) -> None:
    config, store = reading
    story = next(s for s in (get_story(store, i) for i in ranked(config, store)) if s.size >= 2)
    second = story.articles[1]

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await go_to(pilot, app, story.id)
        await pilot.press("s")  # the whole story
        assert all(a.saved for a in get_story(store, story.id).articles)
        await pilot.press("s")  # all saved: unsaved again
        assert not any(a.saved for a in get_story(store, story.id).articles)
        await pilot.press("enter", "down", "s")  # one article of the story
        assert [a.saved for a in get_story(store, story.id).articles] == [
            a.id == second.id for a in story.articles
        ]
        assert "(saved)" in row(app, second.id)[3]
        await pilot.press("enter")
        assert "saved" in shown(app, "#article")
        await pilot.press("s")  # on the article's page: unsaved
        assert not any(a.saved for a in get_story(store, story.id).articles)

    drive(config, store, scenario)


def test_o_opens_the_first_link_and_marks_it_read(reading: tuple[Config, Store]) -> None:
    config, store = reading
    story = next(s for s in (get_story(store, i) for i in ranked(config, store)) if s.size >= 2)
    first, last = story.articles[0], story.articles[-1]
    assert first.url and last.url

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await go_to(pilot, app, story.id)
        await pilot.press("o")
        assert app.opened == [first.url]
        assert [a.read for a in get_story(store, story.id).articles] == [
            a.id == first.id for a in story.articles
        ]
        assert row(app, story.id)[0] == str(story.size - 1)
        await pilot.press("enter", *["down"] * (story.size - 1), "o")  # its last article
        assert app.opened == [first.url, last.url]
        assert row(app, last.id)[0] == ""
        assert app.notices == []

    drive(config, store, scenario)


def test_a_story_without_a_link_or_with_an_unsafe_one_is_a_notice_not_a_crash(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    ids = ranked(config, store)
    linkless, unsafe = get_story(store, ids[0]), get_story(store, ids[1])
    with sqlite3.connect(config.database) as other:  # another program, behind the reader's back
        other.executemany(
            "UPDATE articles SET url = ? WHERE id = ?",
            [(None, a.id) for a in linkless.articles]
            + [("javascript:alert(1)", a.id) for a in unsafe.articles],
        )
    other.close()

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await pilot.press("o")
        assert app.notices == [f"story {linkless.id} has no web link to open"]
        await pilot.press("down", "o")
        assert app.notices[1] == f"story {unsafe.id} has no web link to open"
        assert app.opened == []
        assert get_story(store, unsafe.id).unread == unsafe.size  # nothing opened, nothing read
        assert app.is_running and isinstance(app.screen, StoryList)

    drive(config, store, scenario)


def test_search_lists_the_matching_articles_and_enter_opens_one(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    found = store.search("velmora", limit=SEARCH_LIMIT)
    assert len(found) >= 3

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await pilot.press("slash", *"velmora", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SearchResults)
        assert row_ids(app) == [a.id for a in found]  # newest first, as the store gives them
        assert row(app, found[0].id)[2:] == [found[0].feed, found[0].title, str(found[0].story_id)]
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ArticleScreen)
        assert found[1].title in shown(app, "#article")
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, StoryList)
        await pilot.press("slash", "enter")  # no words
        await pilot.pause()
        await pilot.press("slash", *"qzx", "enter")  # no match
        await pilot.pause()
        assert app.notices == ["search needs at least one word", "No articles match 'qzx'."]
        assert isinstance(app.screen, StoryList)

    drive(config, store, scenario)


def test_filters_by_tag_by_feed_and_to_unread_stories(reading: tuple[Config, Store]) -> None:
    config, store = reading
    every = ranked(config, store)
    local = ranked(config, store, tags=["local"])
    tech = next(feed for feed in config.feeds if feed.title == "Tech Quarter")
    by_feed = ranked(config, store, feeds=[tech.url])
    assert 0 < len(local) < len(every) and 0 < len(by_feed) < len(every) and local != by_feed
    mark(store, [every[0]], articles=False, read=True)
    unread = ranked(config, store, unread=True)
    assert unread == every[1:]

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await pilot.press("t")
        await pick(pilot, app, "local")
        assert row_ids(app) == local
        assert str(app.screen.sub_title).startswith("tag local,")
        await pilot.press("f")
        await pick(pilot, app, tech.url)
        assert row_ids(app) == by_feed  # a feed replaces the tag
        assert str(app.screen.sub_title).startswith("feed Tech Quarter,")
        await pilot.press("f", "escape")  # cancelled: no change
        assert row_ids(app) == by_feed
        await pilot.press("f")
        await pick(pilot, app, "")
        assert row_ids(app) == every
        await pilot.press("u")
        assert row_ids(app) == unread
        await pilot.press("u")
        assert row_ids(app) == every

    drive(config, store, scenario)


def test_refresh_shows_what_another_connection_wrote(reading: tuple[Config, Store]) -> None:
    config, store = reading
    ids = ranked(config, store)
    story = get_story(store, ids[3])

    def elsewhere(*, read: bool) -> None:
        other = open_store(config.database)  # what `aggregator read` in another terminal does
        try:
            mark(other, [story.id], articles=False, read=read)
        finally:
            other.close()

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        await go_to(pilot, app, story.id)
        elsewhere(read=True)
        assert row(app, story.id)[0] == str(story.size)  # not yet
        await pilot.press("R")
        assert row(app, story.id)[0] == ""
        assert cursor_id(app) == story.id  # the cursor stays on its story
        await pilot.press("enter")
        elsewhere(read=False)
        await pilot.press("ctrl+r")
        assert row_ids(app) == [a.id for a in story.articles]
        assert all(row(app, a.id)[0] == "●" for a in story.articles)
        await pilot.press("escape")  # the list was reloaded too
        assert row(app, story.id)[0] == str(story.size)

    drive(config, store, scenario)


def test_headlines_show_as_written_never_as_markup(reading: tuple[Config, Store]) -> None:
    config, store = reading
    story = get_story(store, ranked(config, store)[0])
    title = "Rates [/] up [b]3.8%[/b] at [link=https://x.example]Norvania[/link]"
    with sqlite3.connect(config.database) as other:
        other.execute("UPDATE stories SET title = ? WHERE id = ?", [title, story.id])
        other.execute("UPDATE articles SET title = ? WHERE id = ?", [title, story.articles[0].id])
    other.close()

    async def scenario(app: Recorder, pilot: Pilot[None]) -> None:
        assert row(app, story.id)[4] == title
        await pilot.press("enter")
        assert title in shown(app, "#story")
        assert row(app, story.articles[0].id)[3] == title
        await pilot.press("enter")
        assert title in shown(app, "#article")
        await pilot.pause()

    drive(config, store, scenario)


def test_the_browse_command_runs_the_reader_on_a_real_terminal(offline_db: Path) -> None:
    """The command as a user runs it: a subprocess on a pseudo-terminal, which q quits."""
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "cli", "--config", str(OFFLINE), "--db", str(offline_db)]
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    process = subprocess.Popen(
        [*command, "browse"], cwd=root, env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    screen, deadline, quit_sent = b"", time.monotonic() + 60, False
    try:
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(leader, 65536)
                except OSError:
                    break
            if not quit_sent and b"Quillon" in screen:  # the story list is on the screen
                os.write(leader, b"q")
                quit_sent = True
        assert quit_sent, screen[-2000:]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


# --- first-run fixes (issue 18) ---------------------------------------------------------------


def drive_with(app: Reader, scenario: Callable[[Pilot[None]], Awaitable[None]], size: Any) -> None:
    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(run())


def test_o_with_no_browser_shows_the_link_and_leaves_it_unread(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    story = get_story(store, ranked(config, store)[0])
    first = next(a for a in story.articles if a.url)
    notices: list[str] = []

    class NoBrowser(Reader):
        def notify(self, message: str, **options: Any) -> None:
            notices.append(message)
            super().notify(message, **options)

    app = NoBrowser(config, store, opener=lambda url: False, now=NOW)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("o")
        assert len(notices) == 1 and notices[0].endswith(f"\n{first.url}")
        assert "no browser" in notices[0]
        assert get_story(store, story.id).unread == story.unread  # nothing marked read
        await pilot.press("enter", "o")  # an article's link, likewise
        assert len(notices) == 2 and get_story(store, story.id).unread == story.unread

    drive_with(app, scenario, (120, 40))


def test_the_browser_is_there_only_with_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's real opener: over ssh or on a console there is no browser to start (xdg-open
    would run a text browser over the reader), so it says so instead of launching anything."""
    from aggregator.cli.reading import browser_available, open_in_browser

    if sys.platform in ("darwin", "win32"):
        pytest.skip("a desktop system always has a browser")
    assert not browser_available({})
    assert browser_available({"DISPLAY": ":0"}) and browser_available({"WAYLAND_DISPLAY": "w"})
    assert browser_available({"BROWSER": "lynx"})
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    launched: list[str] = []
    monkeypatch.setattr(click, "launch", lambda url, **kwargs: launched.append(url) or 0)
    assert open_in_browser("https://example.org/") is False and launched == []


def test_long_headlines_end_in_an_ellipsis_and_the_footer_fits_80_columns(
    reading: tuple[Config, Store],
) -> None:
    config, store = reading
    story_id = ranked(config, store)[0]
    long = "Harbour strike " + "and more words about it " * 10 + "END"
    with sqlite3.connect(config.database) as other:
        other.execute("UPDATE stories SET title = ? WHERE id = ?", [long, story_id])
    other.close()
    app = Recorder(config, store, NOW)

    def footer_fits() -> None:
        keys = list(app.screen.query(FooterKey))
        assert keys and all(key.region.right <= 80 for key in keys), [
            (key.description, key.region) for key in keys
        ]

    async def scenario(pilot: Pilot[None]) -> None:
        line = table(app).render_line(1).text  # the first row, under the header
        assert line.rstrip().endswith("…") and "END" not in line and len(line) <= 80
        assert row(app, story_id)[4] == long  # the whole headline stays in the row
        footer_fits()
        await pilot.press("enter")
        footer_fits()
        await pilot.press("enter")
        footer_fits()

    drive_with(app, scenario, (80, 24))


def test_an_empty_database_shows_how_to_fill_it(tmp_path: Path) -> None:
    config = load_config(OFFLINE, database=tmp_path / "empty.db")
    store = open_store(config.database)
    app = Recorder(config, store, NOW)

    async def scenario(pilot: Pilot[None]) -> None:
        hint = app.screen.query_one("#hint", Static)
        assert hint.display and "Run `aggregator poll`" in str(hint.content)
        assert row_ids(app) == []

    try:
        drive_with(app, scenario, (80, 24))
    finally:
        store.close()


KEY_NAMES = {"question_mark": "?", "slash": "/", "backspace": "⌫", "down": "↓", "up": "↑"}


def test_help_lists_every_key(reading: tuple[Config, Store]) -> None:
    from aggregator.browse.screens import ArticleList
    from aggregator.browse.widgets import Table

    config, store = reading
    keys = {
        KEY_NAMES.get(key.strip(), key.strip())
        for owner in (Reader, StoryList, ArticleList, ArticleScreen, Table)
        for binding in owner.BINDINGS
        if isinstance(binding, Binding)
        for key in binding.key.split(",")
    }
    assert {"j", "k", "enter", "ctrl+c", "q", "?"} <= keys
    app = Recorder(config, store, NOW)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        text = str(app.screen.query_one(Static).content)
        listed = {key for line in text.splitlines() if line.startswith("  ")
                  for key in line[:14].replace(",", " ").split()}  # fmt: skip
        assert keys <= listed, keys - listed
        await pilot.press("escape")
        assert isinstance(app.screen, StoryList)

    drive_with(app, scenario, (100, 40))


@pytest.mark.parametrize("where", ["the story list", "the search box"])
def test_ctrl_c_quits_the_reader(reading: tuple[Config, Store], where: str) -> None:
    config, store = reading
    app = Recorder(config, store, NOW)

    async def scenario(pilot: Pilot[None]) -> None:
        if where == "the search box":
            await pilot.press("slash", "v")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running

    drive_with(app, scenario, (80, 24))
