"""The reader's dialogs: the search box, the feed and tag pickers, and the help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

HELP = """\
Stories, best first; a story's articles in time order; one article.

  j, k, ↓, ↑  down and up the list (page down, page up, home, end too)
  enter       open the story, or the article, under the cursor
  escape, ⌫   back to the level above
  r           mark the story (all its articles) or the article read;
              again to mark it unread
  s           save the story (all its articles) or the article:
              saved articles are never pruned; again to unsave
  o           open in the browser (a story's first link) and mark
              that article read; with no browser, show the link
  /           search headlines and summaries, newest first
  f, t        only the stories a feed carries, or feeds with a tag
              (the first choice, "all", clears it)
  u           only the stories with an article not read; again: all
  R, ctrl+r   reload from the database
  ?           this help
  q, ctrl+c   quit

The reader does not fetch feeds: `aggregator run` does, from cron
or a timer, and R shows what it has stored since. The list keeps
its order until then, so a story marked read stays where it is.

escape closes this help."""


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
