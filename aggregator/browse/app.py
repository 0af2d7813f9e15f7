"""The reader's application: its state, its global keys, and `browse`, which runs it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from ..config import Config
from ..errors import AggregatorError
from ..options import check_query
from ..reading import link_to_open, mark_opened
from ..store import Store
from .dialogs import HelpScreen, SearchBox
from .screens import SEARCH_LIMIT, ReaderScreen, SearchResults, StoryList


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
        # The footer fits 80 columns: what it leaves out, ? lists (and a test checks that).
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
        Binding("escape,backspace", "back", "Back"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding(
            "R,ctrl+r",
            "refresh",
            "Refresh",
            key_display="R",
            show=False,
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
        # Nothing above the story list: no Back in its footer.
        return not (action == "back" and len(self.screen_stack) <= 1)

    def action_refresh(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ReaderScreen):
                screen.stale = True
        if isinstance(self.screen, ReaderScreen):
            self.screen.reload()

    def action_interrupt(self) -> None:
        """Ctrl-C quits, as in any terminal program, over a dialog too."""
        self.exit()

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
        """Open a story's first link, or an article's, in the browser, and mark that article
        read. With no browser to open it (``opener`` gives False, or fails), the link is shown
        instead, and the article stays unread."""
        article_id, url = link_to_open(self.store, id, article=article)  # only a web link
        try:
            opened = self.opener(url) is not False
            why = "no browser to open it here"
        except OSError as e:
            opened, why = False, f"the browser could not be started ({e})"
        if not opened:
            self.notify(f"{why}; the link (still unread):\n{url}", timeout=60, markup=False)
            return
        mark_opened(self.store, article_id)
