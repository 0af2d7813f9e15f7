"""Reading: `stories`, `story` and its corrections, `articles`, `search`, `browse`, `read`,
`unread`, `save`, `unsave` and `open`.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from aggregator.options import ALL_TIME, check_query, cutoff

if TYPE_CHECKING:
    from aggregator.models import ArticleView, StoryView

from .app import (
    ARTICLE_ID,
    COUNT,
    EITHER_ID,
    SINCE,
    STORY_ID,
    App,
    article_option,
    cli,
    json_option,
    now,
    pass_app,
    print_json,
    show,
)

# --- browsing ---------------------------------------------------------------------------------


@cli.command()
@click.option("--since", type=SINCE, default="24h", show_default=True, help="6h, 7d, all...")
@click.option("--limit", default=20, show_default=True, type=COUNT, help="How many; 0 for all.")
@click.option(
    "--min-size",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Fewest articles or sources.",
)
@click.option("--unread", is_flag=True, help="Only stories with an article not read.")
@click.option("--feed", "feeds", multiple=True, help="Only stories a feed carries (URL or title).")
@click.option("--tag", "tags", multiple=True, help="Only stories a feed with this tag carries.")
@json_option
@pass_app
def stories(
    app: App,
    since: timedelta,
    limit: int,
    min_size: int,
    unread: bool,
    feeds: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """List stories, ranked, with articles first seen within --since.

    \b
    Example:
      aggregator stories --since 6h --limit 10
      aggregator stories --unread --tag world --json
    """
    from aggregator.listing import ranked_stories, unknown_filters

    with app.store(read_only=True) as store:
        # Said, not fatal: the list is right (empty for these), and scripts may ask ahead.
        for note in unknown_filters(store, feeds=feeds, tags=tags):
            click.echo(f"note: {note}", err=True)
        found = ranked_stories(
            store,
            since=cutoff(now(), since),
            min_size=min_size,
            limit=limit,
            recent=app.config.clustering.quiet_after,
            with_articles=as_json,  # the table shows a story's figures, not its articles
            unread=unread,
            feeds=feeds,
            tags=tags,
        )
    if as_json:
        print_json([s.to_json() for s in found])
    else:
        _show_stories(found)


def _show_stories(found: list[StoryView]) -> None:
    from aggregator.render import render_stories

    def coloured() -> Any:
        from aggregator.terminal import story_table

        return story_table(found)

    show(lambda: render_stories(found), coloured)


def _show_articles(found: list[ArticleView], as_json: bool) -> None:
    if as_json:
        print_json([a.to_json() for a in found])
        return
    from aggregator.render import render_articles

    def coloured() -> Any:
        from aggregator.terminal import article_table

        return article_table(found)

    show(lambda: render_articles(found), coloured)


class StoryCommands(click.Group):
    """`story ID` shows a story (it is `story show ID`); merge, split and move correct one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=StoryCommands)
def story() -> None:
    """Show a story, or correct one: merge, split, move.

    \b
    Examples:
      aggregator story 12 --why
      aggregator story merge 12 40
      aggregator story split 12 301 302
      aggregator story move 301 --to 40
    """


def _show_story(found: StoryView, as_json: bool, *, why: bool = False) -> None:
    from aggregator.render import render_story

    if as_json:
        print_json(found.to_json(why=why))
    else:
        click.echo(render_story(found, why=why), nl=False)


@story.command("show")
@click.argument("story_id", type=STORY_ID)
@click.option("--why", is_flag=True, help="Say what placed each article in the story.")
@json_option
@pass_app
def story_show(app: App, story_id: int, why: bool, as_json: bool) -> None:
    """Show one story: status, sources, key terms and the timeline of its articles.

    The id of a story merged into another shows the story it joined.

    \b
    Example:
      aggregator story 12 --why
    """
    from aggregator.listing import get_story

    with app.store(read_only=True) as store:
        found = get_story(store, story_id, recent=app.config.clustering.quiet_after)
    _show_story(found, as_json, why=why)


@story.command("merge")
@click.argument("story_ids", type=STORY_ID, nargs=-1, required=True)
@json_option
@pass_app
def story_merge(app: App, story_ids: tuple[int, ...], as_json: bool) -> None:
    """Merge stories into one. The oldest keeps its id; the others' ids lead to it.

    \b
    Example:
      aggregator story merge 12 40
    """
    from aggregator.stories import merge_stories

    with app.store() as store:
        found = merge_stories(store, app.config, story_ids, now=now())
    _corrected(app, found, as_json, f"merged into story {found.id}")


@story.command("split")
@click.argument("story_id", type=STORY_ID)
@click.argument("article_ids", type=ARTICLE_ID, nargs=-1, required=True)
@json_option
@pass_app
def story_split(app: App, story_id: int, article_ids: tuple[int, ...], as_json: bool) -> None:
    """Take articles out of a story into a new story, kept apart from it from now on.

    \b
    Example:
      aggregator story split 12 301 302
    """
    from aggregator.stories import split_story

    with app.store() as store:
        found = split_story(store, app.config, story_id, article_ids, now=now())
    _corrected(app, found, as_json, f"split off as story {found.id}")


@story.command("move")
@click.argument("article_ids", type=ARTICLE_ID, nargs=-1, required=True)
@click.option("--to", "to", type=STORY_ID, required=True, help="The story to move them to.")
@json_option
@pass_app
def story_move(app: App, article_ids: tuple[int, ...], to: int, as_json: bool) -> None:
    """Move articles to another story; the stories they leave are kept apart from it.

    \b
    Example:
      aggregator story move 301 --to 40
    """
    from aggregator.stories import move_articles

    with app.store() as store:
        found = move_articles(store, app.config, article_ids, to=to, now=now())
    _corrected(app, found, as_json, f"moved to story {found.id}")


def _corrected(app: App, found: StoryView, as_json: bool, done: str) -> None:
    if as_json:
        print_json(found.to_json())
    else:
        from aggregator.render import plural

        app.say(f"{done}: [{found.id}] {found.title} ({plural(found.size, 'article')})")


@cli.command()
@click.argument("words", nargs=-1)
@click.option("--since", type=SINCE, help="6h, 7d, all... [default: 24h; all with --saved]")
@click.option("--limit", default=50, show_default=True, type=COUNT, help="How many; 0 for all.")
@click.option("--saved", is_flag=True, help="Only saved articles (which are never pruned).")
@json_option
@pass_app
def articles(
    app: App,
    words: tuple[str, ...],
    since: timedelta | None,
    limit: int,
    saved: bool,
    as_json: bool,
) -> None:
    """List articles first seen within --since, newest first; with QUERY, only those that
    match it, with the matches highlighted (as `search` does).

    \b
    Examples:
      aggregator articles --since 2h --json
      aggregator articles ceasefire --since 7d
      aggregator articles --saved
    """
    query = " ".join(words) if words else None
    if query is not None:
        check_query(query)
    if since is None:  # saved articles are kept for good: all of them, unless asked
        since = ALL_TIME if saved else timedelta(hours=24)
    with app.store(read_only=True) as store:
        start = cutoff(now(), since)
        if query is None:
            found = store.articles(since=start, limit=limit, saved=saved)
        else:
            found = store.search(query, since=start, limit=limit, muted=False, saved=saved)
    _show_articles(found, as_json)


@cli.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--since", type=SINCE, default="all", show_default=True, help="6h, 7d, all...")
@click.option("--limit", default=50, show_default=True, type=COUNT, help="How many; 0 for all.")
@json_option
@pass_app
def search(app: App, words: tuple[str, ...], since: timedelta, limit: int, as_json: bool) -> None:
    """Full-text search of titles and summaries, newest first, matches highlighted.

    The words are looked for as given (all of them, in any order; quotes are not needed),
    never read as query syntax. Muted articles are found too, and marked.

    \b
    Example:
      aggregator search central bank
    """
    query = check_query(" ".join(words))
    with app.store(read_only=True) as store:
        found = store.search(query, since=cutoff(now(), since), limit=limit)
    _show_articles(found, as_json)


# --- reading ----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--since", type=SINCE, default="all", show_default=True, help="Stories seen within: 6h, 7d..."
)
@pass_app
def browse(app: App, since: timedelta) -> None:
    """Read stories interactively: the story list, a story's timeline, an article.

    Keys: enter opens, escape goes back, r marks read or unread, o opens the link in the
    browser, / searches, f and t filter by feed or tag, u shows only unread, R reloads what
    cron's polls stored, ? lists every key, q quits.

    \b
    Example:
      aggregator browse
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError("browse needs a terminal; for scripts, use stories or search")
    from aggregator.browse import browse as run_reader

    with app.store() as store:
        # The reader takes None for all time, and names the window it shows.
        window = None if since == ALL_TIME else since
        run_reader(app.config, store, opener=open_in_browser, since=window)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the user's web browser; False when there is none to open it with: no
    display to show one on (over ssh, on a console), or the launcher failed."""
    if not browser_available():
        return False
    return click.launch(url) == 0


def browser_available(environ: dict[str, str] | None = None) -> bool:
    """Whether a graphical browser can open here. Without a display, xdg-open would fall back
    to a text browser in this very terminal, over the reader."""
    import os

    env = os.environ if environ is None else environ
    if sys.platform in ("darwin", "win32") or env.get("BROWSER"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=EITHER_ID)
@article_option
@pass_app
def read(app: App, ids: tuple[tuple[bool, int], ...], articles: bool) -> None:
    """Mark stories, or articles (a3051, or any id with --article), read: a story's articles
    and their copies.

    \b
    Example:
      aggregator read 12 15
      aggregator read a3051
    """
    _mark(app, ids, articles=articles, read=True)


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=EITHER_ID)
@article_option
@pass_app
def unread(app: App, ids: tuple[tuple[bool, int], ...], articles: bool) -> None:
    """Mark stories, or articles with --article, unread again.

    \b
    Example:
      aggregator unread 12
    """
    _mark(app, ids, articles=articles, read=False)


def _split_ids(ids: tuple[tuple[bool, int], ...], *, articles: bool) -> tuple[list[int], list[int]]:
    """The story ids and the article ids among ``ids`` (all articles with --article)."""
    stories = [n for article, n in ids if not (article or articles)]
    return stories, [n for article, n in ids if article or articles]


def _mark(app: App, ids: tuple[tuple[bool, int], ...], *, articles: bool, read: bool) -> None:
    from aggregator.reading import mark
    from aggregator.render import plural

    stories, chosen = _split_ids(ids, articles=articles)
    with app.store() as store, store.transaction():
        changed = mark(store, stories, articles=False, read=read) if stories else 0
        changed += mark(store, chosen, articles=True, read=read) if chosen else 0
    app.say(f"{plural(changed, 'article')} marked {'read' if read else 'unread'}")


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=EITHER_ID)
@article_option
@pass_app
def save(app: App, ids: tuple[tuple[bool, int], ...], articles: bool) -> None:
    """Save stories (every article they hold), or articles (a3051, or any id with --article):
    saved articles are never pruned (database.keep), and keep their story's headline and id.

    \b
    Example:
      aggregator save 12
      aggregator save a3051
    """
    _save(app, ids, articles=articles, saved=True)


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=EITHER_ID)
@article_option
@pass_app
def unsave(app: App, ids: tuple[tuple[bool, int], ...], articles: bool) -> None:
    """Unsave stories, or articles (a3051, or any id with --article): they are pruned again
    once old.

    \b
    Example:
      aggregator unsave a3051
    """
    _save(app, ids, articles=articles, saved=False)


def _save(app: App, ids: tuple[tuple[bool, int], ...], *, articles: bool, saved: bool) -> None:
    from aggregator.reading import save
    from aggregator.render import plural

    stories, chosen = _split_ids(ids, articles=articles)
    moment = now()
    with app.store() as store, store.transaction():
        changed = save(store, stories, articles=False, saved=saved, now=moment) if stories else 0
        changed += save(store, chosen, articles=True, saved=saved, now=moment) if chosen else 0
    app.say(f"{plural(changed, 'article')} {'saved' if saved else 'unsaved'}")


@cli.command(name="open")
@click.argument("id", type=EITHER_ID)
@article_option
@pass_app
def open_link(app: App, id: tuple[bool, int], articles: bool) -> None:
    """Open a story's first link, or an article's with --article, in the browser; it is then
    marked read.

    \b
    Examples:
      aggregator open 12
      aggregator open a3051
    """
    from aggregator.reading import link_to_open, mark_opened

    with app.store() as store:
        article_id, url = link_to_open(store, id[1], article=articles or id[0])
        app.say(url)  # shown, so a terminal with no browser still has the link
        click.launch(url)
        mark_opened(store, article_id)
