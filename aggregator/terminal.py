"""Stories and articles as coloured tables for a terminal (rich). Pure: returns renderables.

The CLI uses these only when stdout is a terminal, and imports this module (and so rich) only
then: piped output is the plain text of aggregator.render.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .models import ArticleView, Highlight, StoryStatus, StoryView
from .render import article_ref, when

__all__ = ["STATUS_STYLES", "article_table", "highlighted", "status_text", "story_table"]

# New and growing stand out. Quiet is a calm blue, not "dim": dim already says "read" (a read
# story's row in the reader, a headline with nothing unread here), and a quiet story may still
# hold articles nobody has read.
STATUS_STYLES = {
    StoryStatus.NEW: "bold green",
    StoryStatus.GROWING: "bold yellow",
    StoryStatus.QUIET: "steel_blue",
}
MATCH_STYLE = "bold black on yellow"


def highlighted(found: Highlight, style: str = "") -> Text:
    """Text with a search's matches marked."""
    text = Text(found.text, style=style)
    for start, end in found.spans:
        text.stylize(MATCH_STYLE, start, end)
    return text


def status_text(status: StoryStatus) -> Text:
    """A story's status in its colour (the CLI's tables and the reader use the same)."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def story_table(stories: Sequence[StoryView]) -> RenderableType:
    """Ranked stories: status, size, sources, unread, and the headline over its key terms."""
    if not stories:
        return Text("No stories. Try --since all or --min-size 1.")
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("id", justify="right", style="cyan")
    table.add_column("status")
    table.add_column("art.", justify="right")
    table.add_column("src.", justify="right")
    table.add_column("unread", justify="right")
    table.add_column("headline", ratio=1, overflow="fold")
    table.add_column("last seen", style="dim", no_wrap=True)
    for rank, story in enumerate(stories, start=1):
        headline = Text()
        headline.append(story.title, style="bold" if story.unread else "dim")
        if story.terms:
            headline.append("\n" + ", ".join(story.terms), style="dim italic")
        table.add_row(
            str(rank),
            str(story.id),
            status_text(story.status),
            str(story.size),
            str(len(story.sources)),
            Text(
                str(story.unread) if story.unread else "-", style="bold" if story.unread else "dim"
            ),
            headline,
            when(story.last_seen),
        )
    return table


def article_table(articles: Sequence[ArticleView]) -> RenderableType:
    """Articles newest first; with a search, the headline and summary show where it matched."""
    if not articles:
        return Text("No articles.")
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", justify="right", style="cyan")
    table.add_column("published", style="dim", no_wrap=True)
    table.add_column("feed", style="magenta", max_width=24, overflow="ellipsis")
    table.add_column("headline", ratio=1, overflow="fold")
    table.add_column("story", justify="right", style="cyan")
    for article in articles:
        style = "dim" if article.read or article.muted else ""
        parts: list[RenderableType] = []
        if article.title_match is not None:
            parts.append(highlighted(article.title_match, style=style or "bold"))
        else:
            parts.append(Text(article.title, style=style or "bold"))
        if article.snippet is not None and article.snippet.spans:
            parts.append(highlighted(article.snippet, style="dim"))
        if article.muted:
            parts.append(Text("(muted)", style="dim italic"))
        if article.saved:
            parts.append(Text("(saved)", style="green italic"))
        table.add_row(
            article_ref(article.id),
            when(article.published),
            Text(article.feed),  # feed text is never markup
            Group(*parts),
            str(article.story_id or "-"),
        )
    return table
