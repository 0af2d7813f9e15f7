"""The reader's table, and the cells of its story and article rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from ..models import ArticleView, StoryView
from ..render import when
from ..terminal import status_text

UNREAD_MARK = "●"


class Table(DataTable[Text]):
    """A row-cursor table whose enter opens the row (shown in the footer), with j and k.

    Its headline column takes the width the others leave, and a longer headline ends in an
    ellipsis there (the whole of it is a level down), rather than running off the screen.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *columns: tuple[str, str], id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._column_specs = columns
        self._filled: list[tuple[int, Sequence[Text]]] = []
        self._fitted_to = 0

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
        self._filled = list(rows)
        width = self._headline_width()
        if width is not None:
            # A fixed width for the headlines (the rows added next measure the table anew).
            headline = self.columns[ColumnKey("title")]
            headline.auto_width, headline.width = False, width
        for id, cells in rows:
            self.add_row(*self._fit(cells, width), key=str(id))
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
        self._filled = [(i, cells if i == id else old) for i, old in self._filled]
        fitted = self._fit(cells, self._headline_width())
        for (key, _), cell in zip(self._column_specs, fitted, strict=True):
            self.update_cell(str(id), key, cell)

    def on_resize(self) -> None:
        if self._filled and self.size.width != self._fitted_to:
            self.fill(self._filled, fallback=None)

    def _headline_width(self) -> int | None:
        """What the headline column may take: the table's width less the other columns (each
        with its padding) and the scrollbar; None when there is no headline column."""
        keys = [key for key, _ in self._column_specs]
        if "title" not in keys:
            return None
        self._fitted_to = self.size.width or self.app.size.width
        others = 0
        for i, (key, label) in enumerate(self._column_specs):
            if key != "title":
                cells = [cells[i].cell_len for _, cells in self._filled]
                others += max([len(label), *cells]) + 2 * self.cell_padding
        return max(12, self._fitted_to - others - 2 * self.cell_padding - 2)

    def _fit(self, cells: Sequence[Text], width: int | None) -> Sequence[Text]:
        """The cells, the headline on one line that ends in an ellipsis where it is cut (its
        text stays whole: the reader's levels below, and tests, read it)."""
        keys = [key for key, _ in self._column_specs]
        if width is None or "title" not in keys:
            return cells
        at = keys.index("title")
        title = cells[at].copy()
        title.no_wrap, title.overflow = True, "ellipsis"
        return [*cells[:at], title, *cells[at + 1 :]]


def span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def story_cells(story: StoryView) -> list[Text]:
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


def article_cells(article: ArticleView, *, story: bool = False) -> list[Text]:
    cells = [
        Text("" if article.read else UNREAD_MARK, style="bold"),
        Text(when(article.published)),
        Text(article.feed),
        Text(article.title),
    ]
    if article.muted:  # only a search lists muted articles
        cells[3].append(" (muted)", style="italic")
    if article.saved:  # never pruned
        cells[3].append(" (saved)", style="italic green")
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
