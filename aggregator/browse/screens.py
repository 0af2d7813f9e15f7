"""The reader's levels: the story list, a story's articles, search results, one article."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..listing import get_story, ranked_stories
from ..models import ArticleView, StoryView
from ..options import cutoff
from ..reading import mark, save
from ..render import article_ref, plural, safe_url, when
from ..store import Store
from ..terminal import status_text
from .dialogs import Picker
from .widgets import ARTICLE_COLUMNS, Table, article_cells, span, story_cells

if TYPE_CHECKING:
    from .app import Reader

# The list shows the best stories first; past a few hundred nobody scrolls, and each row costs
# two queries.
STORY_LIMIT = 500
SEARCH_LIMIT = 200
# Stories of one article show too: in a reader, an article one outlet alone carries is still
# something to read, and hiding it would leave it reachable only by search.
MIN_SIZE = 1


class ReaderScreen(Screen[None]):
    """A level of the reader: it loads itself from the store, and again when shown anew."""

    def __init__(self) -> None:
        super().__init__()
        self.stale = False  # R was pressed while another screen was on top
        self._shown = False

    @property
    def reader(self) -> Reader:
        from .app import Reader  # the app that shows these screens imports them

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
        Binding("r", "toggle_read", "Read"),
        # The footer holds 80 columns' worth of keys: s is in ? (help) and the README.
        Binding("s", "toggle_saved", "Save", show=False),
        Binding("o", "open_link", "Link"),
        Binding("f", "pick_feed", "Feed"),
        Binding("t", "pick_tag", "Tag"),
        Binding("u", "toggle_unread", "Unread"),
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
        yield Static(id="hint", classes="body")
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
        self.table.fill([(s.id, story_cells(s)) for s in stories], fallback=fallback)
        window = f"first seen in the last {span(reader.since)}" if reader.since else "all time"
        count = plural(len(stories), "story")
        shown = f"top {count}" if len(stories) == STORY_LIMIT else count
        self.sub_title = f"{wanted.describe()}, {window}: {shown}"
        hint = self.query_one("#hint", Static)
        hint.display = not stories
        if stories:
            return
        if wanted != type(wanted)():
            hint.update("No stories match these filters: f, t or u again clears them.")
        elif self.store.counts()["articles"] == 0:
            hint.update(
                "No stories yet: the database is empty. Run `aggregator poll` in another "
                "terminal (or let cron's `aggregator run` do it), then press R here."
            )
        else:
            hint.update("No stories in this window: `aggregator browse --since all` shows all.")

    def resumed(self) -> None:
        with self.reader.reporting():
            for story_id in sorted(self.reader.changed_stories):
                self._update_row(story_id)
        self.reader.changed_stories.clear()

    def _update_row(self, story_id: int) -> None:
        story = get_story(self.store, story_id, now=self.reader.now(), recent=self.reader.recent)
        self.table.replace_row(story_id, story_cells(story))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(StoryScreen(int(event.row_key.value)))

    def _current_story(self) -> tuple[int, StoryView] | None:
        """The row under the cursor: its key, and the story as it is now."""
        story_id = self.table.current_key()
        if story_id is None:
            return None
        return story_id, get_story(
            self.store, story_id, now=self.reader.now(), recent=self.reader.recent
        )

    def action_toggle_read(self) -> None:
        with self.reader.reporting():
            current = self._current_story()
            if current is not None:
                story_id, story = current
                mark(self.store, [story_id], articles=False, read=story.unread > 0)
                self._update_row(story_id)

    def action_toggle_saved(self) -> None:
        """Save every article of the story (never pruned), or unsave them when all are saved."""
        with self.reader.reporting():
            current = self._current_story()
            if current is not None:
                story_id, story = current
                saved = not all(a.saved for a in story.articles)
                now = self.reader.now()
                changed = save(self.store, [story_id], articles=False, saved=saved, now=now)
                what = "saved" if saved else "unsaved"
                self.notify(f"story {story_id}: {plural(changed, 'article')} {what}")

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
        Binding("r", "toggle_read", "Read"),
        Binding("s", "toggle_saved", "Save"),
        Binding("o", "open_link", "Link"),
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
            toggle_article(self.reader, article_id)
            self.reload()

    def action_toggle_saved(self) -> None:
        article_id = self.table.current_key()
        if article_id is not None:
            toggle_saved(self.reader, article_id)
            self.reload()

    def action_open_link(self) -> None:
        article_id = self.table.current_key()
        if article_id is not None:
            open_article(self.reader, article_id)
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
        for sentence in story.summary:
            head.append(f"\n{sentence.text} ")
            head.append(f"({sentence.feed})", style="dim")
        self.query_one("#story", Static).update(head)
        self.table.fill([(a.id, article_cells(a)) for a in story.articles], fallback=None)


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
        self.table.fill([(a.id, article_cells(a, story=True)) for a in self.found], fallback=None)


class ArticleScreen(ReaderScreen):
    """One article: its headline, outlet, time, link, summary and copies in other feeds."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "toggle_read", "Read"),
        Binding("s", "toggle_saved", "Save"),
        Binding("o", "open_link", "Link"),
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
        self.sub_title = f"article {article_ref(article.id)}" + (
            f" in story {article.story_id}" if article.story_id else ""
        )
        body = Text()
        body.append(article.title, style="bold")
        body.append(f"\n{article.feed}, {when(article.published)}, ")
        body.append("read" if article.read else "unread", style="dim" if article.read else "bold")
        if article.saved:
            body.append(", saved", style="green")
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
        toggle_article(self.reader, self.article_id)
        self.reload()

    def action_toggle_saved(self) -> None:
        toggle_saved(self.reader, self.article_id)
        self.reload()

    def action_open_link(self) -> None:
        open_article(self.reader, self.article_id)
        self.reload()


def toggle_article(reader: Reader, article_id: int) -> None:
    with reader.reporting():
        (article,) = reader.store.article_views([article_id])
        mark(reader.store, [article_id], articles=True, read=not article.read)
        if article.story_id is not None:
            reader.changed_stories.add(article.story_id)


def toggle_saved(reader: Reader, article_id: int) -> None:
    with reader.reporting():
        (article,) = reader.store.article_views([article_id])
        save(reader.store, [article_id], articles=True, saved=not article.saved, now=reader.now())


def open_article(reader: Reader, article_id: int) -> None:
    with reader.reporting():
        reader.open_link(article_id, article=True)
        for story_id in reader.store.stories_of([article_id]).values():
            if story_id is not None:
                reader.changed_stories.add(story_id)
