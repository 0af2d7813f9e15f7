"""The interactive reader, `aggregator browse`: ranked stories, a story's timeline, one article.

A Textual application over the store. It only reads the database and marks articles read or
unread: polling stays with `aggregator run` (from cron), and R reloads what that wrote. Every
call to the store is made from the app's own thread (plain handlers, no thread workers), since
the SQLite connection is not shared between threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from .config import Config
from .errors import AggregatorError
from .listing import get_story, ranked_stories
from .models import ArticleView, StoryView
from .options import check_query, cutoff
from .reading import link_to_open, mark
from .render import plural, safe_url, when
from .store import Store
from .terminal import status_text

__all__ = ["Reader", "browse"]

# The list shows the best stories first; past a few hundred nobody scrolls, and each row costs
# two queries.
STORY_LIMIT = 500
SEARCH_LIMIT = 200
# Stories of one article show too: in a reader, an article one outlet alone carries is still
# something to read, and hiding it would leave it reachable only by search.
MIN_SIZE = 1

UNREAD_MARK = "●"

HELP = """\
Stories, best first; a story's articles in time order; one article.

  enter       open the story, or the article, under the cursor
  escape, ⌫   back to the level above
  r           mark the story (all its articles) or the article read;
              again to mark it unread
  o           open in the browser (a story's first link) and mark
              that article read
  /           search headlines and summaries, newest first
  f, t        only the stories a feed carries, or feeds with a tag
              (the first choice, "all", clears it)
  u           only the stories with an article not read; again: all
  R, ctrl+r   reload from the database
  q           quit

The reader does not fetch feeds: `aggregator run` does, from cron
or a timer, and R shows what it has stored since. The list keeps
its order until then, so a story marked read stays where it is.

escape closes this help."""


def browse(
    config: Config,
    store: Store,
    *,
    opener: Callable[[str], object],
    since: timedelta | None = None,
) -> None:
    """Run the reader until the user quits; ``opener`` opens a link in the browser."""
    Reader(config, store, opener=opener, since=since).run()


@dataclass(frozen=True)
class StoryFilter:
    """Which stories the list shows. A feed and a tag are exclusive: the store keeps a story
    that either would keep, which is not what someone narrowing the list expects."""

    feed: str | None = None  # a feed's URL
    feed_name: str | None = None
    tag: str | None = None
    unread: bool = False

    def describe(self) -> str:
        parts = []
        if self.feed:
            parts.append(f"feed {self.feed_name or self.feed}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        if self.unread:
            parts.append("unread only")
        return ", ".join(parts) or "all stories"


class Reader(App[None]):
    """The reader. ``now`` fixes the clock (tests); ``since`` keeps stories with an article
    first seen within that window (None: all stories)."""

    TITLE = "aggregator"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    .head { height: auto; padding: 0 1; }
    .body { padding: 0 1 1 1; }
    DataTable { height: 1fr; }
    ModalScreen { align: center middle; }
    ModalScreen > Vertical {
        width: 76; height: auto; max-height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    ModalScreen OptionList { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("escape,backspace", "back", "Back"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding(
            "R,ctrl+r",
            "refresh",
            "Refresh",
            key_display="R",
            tooltip="Reload from the database; `aggregator run` (cron) polls the feeds",
        ),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        opener: Callable[[str], object],
        now: datetime | None = None,
        since: timedelta | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.opener = opener
        self.since = since
        self.story_filter = StoryFilter()
        self._now = now
        # Stories whose articles were marked at a deeper level: their rows in the list are
        # brought up to date when it shows again, without reordering it.
        self.changed_stories: set[int] = set()

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    @property
    def recent(self) -> timedelta:
        return self.config.clustering.quiet_after

    def get_default_screen(self) -> Screen[Any]:
        return StoryList()

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """Show an error the user can act on as a notification; the reader carries on."""
        try:
            yield
        except AggregatorError as e:
            self.notify(str(e), title="aggregator", severity="error", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Over a picker, the search box or the help, only the dialog's own keys apply.
        if isinstance(self.screen, ModalScreen):
            return action not in ("quit", "back", "search", "refresh", "help")
        return True

    def action_refresh(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ReaderScreen):
                screen.stale = True
        if isinstance(self.screen, ReaderScreen):
            self.screen.reload()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_search(self) -> None:
        self.push_screen(SearchBox(), self._search)

    def _search(self, query: str | None) -> None:
        if query is None:
            return
        with self.reporting():
            found = self.store.search(check_query(query), limit=SEARCH_LIMIT)
            if not found:
                self.notify(f"No articles match {query!r}.", markup=False)
                return
            self.push_screen(SearchResults(query, found))

    def open_link(self, id: int, *, article: bool) -> None:
        """Open a story's first link, or an article's, in the browser (which marks it read)."""
        url = link_to_open(self.store, id, article=article)  # only ever a web link
        try:
            self.opener(url)
        except OSError as e:
            self.notify(f"Could not open {url}: {e}", severity="error", markup=False)


# --- widgets ----------------------------------------------------------------------------------


class Table(DataTable[Text]):
    """A row-cursor table whose enter opens the row (shown in the footer), with j and k."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *columns: tuple[str, str], id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._column_specs = columns

    def on_mount(self) -> None:
        for key, label in self._column_specs:
            self.add_column(label, key=key)

    def current_key(self) -> int | None:
        """The id under the cursor (rows are keyed by story or article id)."""
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return int(key) if key is not None else None

    def fill(self, rows: Sequence[tuple[int, Sequence[Text]]], *, fallback: int | None) -> None:
        """Replace the rows, keeping the cursor on the same id when it is still there, else
        at row ``fallback`` (None: at the same position)."""
        current, position = self.current_key(), self.cursor_row
        self.clear()
        for id, cells in rows:
            self.add_row(*cells, key=str(id))
        ids = [id for id, _ in rows]
        if current in ids:
            position = ids.index(current)
        elif fallback is not None:
            position = fallback
        if rows:
            self.move_cursor(row=min(position, len(rows) - 1), animate=False)

    def replace_row(self, id: int, cells: Sequence[Text]) -> None:
        if str(id) not in self.rows:
            return
        for (key, _), cell in zip(self._column_specs, cells, strict=True):
            self.update_cell(str(id), key, cell)


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _story_cells(story: StoryView) -> list[Text]:
    cells = [
        Text(str(story.unread) if story.unread else "", justify="right"),
        status_text(story.status),
        Text(str(len(story.sources)), justify="right"),
        Text(str(story.size), justify="right"),
        Text(story.title),  # a Text, never markup: a headline's brackets are the outlet's
    ]
    if not story.unread:
        for cell in cells:
            cell.stylize("dim")
    return cells


def _article_cells(article: ArticleView, *, story: bool = False) -> list[Text]:
    cells = [
        Text("" if article.read else UNREAD_MARK, style="bold"),
        Text(when(article.published)),
        Text(article.feed),
        Text(article.title),
    ]
    if article.muted:  # only a search lists muted articles
        cells[3].append(" (muted)", style="italic")
    if story:
        cells.append(Text(str(article.story_id or ""), justify="right"))
    if article.read:
        for cell in cells:
            cell.stylize("dim")
    return cells


ARTICLE_COLUMNS = (
    ("read", " "),
    ("time", "time"),
    ("outlet", "outlet"),
    ("title", "headline"),
)


# --- screens ----------------------------------------------------------------------------------


class ReaderScreen(Screen[None]):
    """A level of the reader: it loads itself from the store, and again when shown anew."""

    def __init__(self) -> None:
        super().__init__()
        self.stale = False  # R was pressed while another screen was on top
        self._shown = False

    @property
    def reader(self) -> Reader:
        app = self.app
        assert isinstance(app, Reader)
        return app

    @property
    def store(self) -> Store:
        return self.reader.store

    def on_screen_resume(self) -> None:
        # The first resume is the screen's first showing, and the widgets are mounted by then.
        if not self._shown:
            self._shown = True
            self.first_show()
        elif self.stale:
            self.reload()
        else:
            self.resumed()

    def reload(self) -> None:
        """Read everything this screen shows from the store again."""
        self.stale = False
        with self.reader.reporting():
            self.load()

    def load(self) -> None:
        raise NotImplementedError

    def first_show(self) -> None:
        self.reload()

    def resumed(self) -> None:
        """Back from a deeper level: what it marked may show here."""
        self.reload()


class StoryList(ReaderScreen):
    """The ranked stories."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "toggle_read", "Read/unread"),
        Binding("o", "open_link", "Open link"),
        Binding("f", "pick_feed", "Feed"),
        Binding("t", "pick_tag", "Tag"),
        Binding("u", "toggle_unread", "Unread only"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Table(
            ("unread", "unread"),
            ("status", "status"),
            ("sources", "sources"),
            ("articles", "articles"),
            ("title", "headline"),
            id="stories",
        )
        yield Footer()

    @property
    def table(self) -> Table:
        return self.query_one(Table)

    def load(self, *, fallback: int | None = None) -> None:
        reader = self.reader
        wanted = reader.story_filter
        stories = ranked_stories(
            self.store,
            since=cutoff(reader.now(), reader.since),
            min_size=MIN_SIZE,
            limit=STORY_LIMIT,
            now=reader.now(),
            recent=reader.recent,
            with_articles=False,  # the list needs counts only; a story's view loads its own
            unread=wanted.unread,
            feeds=[wanted.feed] if wanted.feed else [],
            tags=[wanted.tag] if wanted.tag else [],
        )
        reader.changed_stories.clear()  # every row is fresh now
        self.table.fill([(s.id, _story_cells(s)) for s in stories], fallback=fallback)
        window = f"first seen in the last {_span(reader.since)}" if reader.since else "all time"
        count = plural(len(stories), "story")
        shown = f"top {count}" if len(stories) == STORY_LIMIT else count
        self.sub_title = f"{wanted.describe()}, {window}: {shown}"

    def resumed(self) -> None:
        with self.reader.reporting():
            for story_id in sorted(self.reader.changed_stories):
                self._update_row(story_id)
        self.reader.changed_stories.clear()

    def _update_row(self, story_id: int) -> None:
        story = get_story(self.store, story_id, now=self.reader.now(), recent=self.reader.recent)
        self.table.replace_row(story_id, _story_cells(story))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(StoryScreen(int(event.row_key.value)))

    def action_toggle_read(self) -> None:
        story_id = self.table.current_key()
        if story_id is None:
            return
        with self.reader.reporting():
            story = get_story(
                self.store, story_id, now=self.reader.now(), recent=self.reader.recent
            )
            mark(self.store, [story_id], articles=False, read=story.unread > 0)
            self._update_row(story_id)

    def action_open_link(self) -> None:
        story_id = self.table.current_key()
        if story_id is None:
            return
        with self.reader.reporting():
            self.reader.open_link(story_id, article=False)
            self._update_row(story_id)

    def action_toggle_unread(self) -> None:
        reader = self.reader
        reader.story_filter = replace(reader.story_filter, unread=not reader.story_filter.unread)
        self._refilter()

    def action_pick_feed(self) -> None:
        choices = [
            (feed.title or feed.url, feed.url, ", ".join(feed.tags))
            for feed in self.reader.config.feeds
        ]
        current = self.reader.story_filter.feed
        self.app.push_screen(
            Picker("Show the stories a feed carries", choices, current=current), self._feed
        )

    def action_pick_tag(self) -> None:
        feeds = self.reader.config.feeds
        tags = sorted({tag for feed in feeds for tag in feed.tags})
        choices = [
            (tag, tag, plural(sum(tag in feed.tags for feed in feeds), "feed")) for tag in tags
        ]
        current = self.reader.story_filter.tag
        self.app.push_screen(
            Picker("Show the stories of feeds with a tag", choices, current=current), self._tag
        )

    def _feed(self, url: str | None) -> None:
        if url is None:
            return
        names = {feed.url: feed.title for feed in self.reader.config.feeds}
        self.reader.story_filter = replace(
            self.reader.story_filter, feed=url or None, feed_name=names.get(url), tag=None
        )
        self._refilter()

    def _tag(self, tag: str | None) -> None:
        if tag is None:
            return
        self.reader.story_filter = replace(
            self.reader.story_filter, tag=tag or None, feed=None, feed_name=None
        )
        self._refilter()

    def _refilter(self) -> None:
        with self.reader.reporting():
            self.load(fallback=0)  # another list: its top, unless the story is still in it


class ArticleList(ReaderScreen):
    """A screen that lists articles: enter opens one, r marks it, o opens its link."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "toggle_read", "Read/unread"),
        Binding("o", "open_link", "Open link"),
    ]

    @property
    def table(self) -> Table:
        return self.query_one(Table)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(ArticleScreen(int(event.row_key.value)))

    def action_toggle_read(self) -> None:
        article_id = self.table.current_key()
        if article_id is not None:
            _toggle_article(self.reader, article_id)
            self.reload()

    def action_open_link(self) -> None:
        article_id = self.table.current_key()
        if article_id is not None:
            _open_article(self.reader, article_id)
            self.reload()


class StoryScreen(ArticleList):
    """One story: what it is, and its articles in time order."""

    def __init__(self, story_id: int) -> None:
        super().__init__()
        self.story_id = story_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="story", classes="head")
        yield Table(*ARTICLE_COLUMNS, id="timeline")
        yield Footer()

    def load(self) -> None:
        story = get_story(
            self.store, self.story_id, now=self.reader.now(), recent=self.reader.recent
        )
        self.story_id = story.id  # a story merged since leads to the one it joined
        self.sub_title = f"story {story.id}"
        head = Text()
        head.append(story.title, style="bold")
        head.append("\n")
        head.append_text(status_text(story.status))
        head.append(
            f", {plural(story.size, 'article')} ({story.unread} unread), "
            f"{plural(len(story.sources), 'source')}: {', '.join(story.sources)}\n"
        )
        head.append(f"first seen {when(story.first_seen)}, last {when(story.last_seen)}")
        if story.terms:
            head.append("\nterms: " + ", ".join(story.terms))
        self.query_one("#story", Static).update(head)
        self.table.fill([(a.id, _article_cells(a)) for a in story.articles], fallback=None)


class SearchResults(ArticleList):
    """Articles matching a search, newest first."""

    def __init__(self, query: str, found: Sequence[ArticleView]) -> None:
        super().__init__()
        self.query_text = query
        self.found = list(found)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Table(*ARTICLE_COLUMNS, ("story", "story"), id="results")
        yield Footer()

    def first_show(self) -> None:
        self._show()  # the search has just run: its results are fresh

    def load(self) -> None:
        self.found = self.store.search(self.query_text, limit=SEARCH_LIMIT)
        self._show()

    def _show(self) -> None:
        n = len(self.found)
        self.sub_title = f"search {self.query_text!r}: {plural(n, 'article')}, newest first"
        self.table.fill([(a.id, _article_cells(a, story=True)) for a in self.found], fallback=None)


class ArticleScreen(ReaderScreen):
    """One article: its headline, outlet, time, link, summary and copies in other feeds."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "toggle_read", "Read/unread"),
        Binding("o", "open_link", "Open link"),
    ]

    def __init__(self, article_id: int) -> None:
        super().__init__()
        self.article_id = article_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="article", classes="body")
        yield Footer()

    def load(self) -> None:
        (article,) = self.store.article_views([self.article_id])
        self.sub_title = f"article {article.id}" + (
            f" in story {article.story_id}" if article.story_id else ""
        )
        body = Text()
        body.append(article.title, style="bold")
        body.append(f"\n{article.feed}, {when(article.published)}, ")
        body.append("read" if article.read else "unread", style="dim" if article.read else "bold")
        body.append("\n")
        if article.url:
            link = safe_url(article.url)
            body.append(article.url, style=f"link {link}" if link else "")
        else:
            body.append("(no link)", style="dim")
        body.append("\n\n")
        body.append(article.summary or "(no summary)", style="" if article.summary else "dim")
        if article.duplicates:
            body.append("\n\nAlso in:", style="bold")
            for copy in article.duplicates:
                body.append(f"\n  {copy.feed}: {copy.url or '(no link)'}")
        self.query_one("#article", Static).update(body)

    def action_toggle_read(self) -> None:
        _toggle_article(self.reader, self.article_id)
        self.reload()

    def action_open_link(self) -> None:
        _open_article(self.reader, self.article_id)
        self.reload()


def _toggle_article(reader: Reader, article_id: int) -> None:
    with reader.reporting():
        (article,) = reader.store.article_views([article_id])
        mark(reader.store, [article_id], articles=True, read=not article.read)
        if article.story_id is not None:
            reader.changed_stories.add(article.story_id)


def _open_article(reader: Reader, article_id: int) -> None:
    with reader.reporting():
        reader.open_link(article_id, article=True)
        for story_id in reader.store.stories_of([article_id]).values():
            if story_id is not None:
                reader.changed_stories.add(story_id)


# --- dialogs ----------------------------------------------------------------------------------


class SearchBox(ModalScreen[str | None]):
    """Asks for the words to search for."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Search headlines and summaries (enter to search, escape to cancel)")
            yield Input(placeholder="words…", id="query")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


CLEAR = ""  # what a picker gives for its "all" choice


class Picker(ModalScreen[str | None]):
    """A list to choose from, headed by a choice that clears the filter; None when cancelled.

    Each choice is (label, value, a note shown dimmed beside the label).
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Cancel")]

    def __init__(
        self, prompt: str, choices: Sequence[tuple[str, str, str]], *, current: str | None
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.values = [CLEAR, *(value for _, value, _ in choices)]
        self.labels = [Text("all: clear the filter", style="italic")]
        for label, _, note in choices:
            self.labels.append(Text(label).append(f"  {note}" if note else "", style="dim"))
        self.current = self.values.index(current) if current in self.values else 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.prompt)
            yield OptionList(*(Option(label) for label in self.labels))

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = self.current

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.values[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """The keys, and where new articles come from."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(HELP))

    def action_close(self) -> None:
        self.dismiss(None)
