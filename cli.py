"""The `aggregator` command. Thin: each command parses options, calls the library, prints.

Heavy modules (the pipeline, scikit-learn, feedparser) are imported inside the commands, so
`aggregator --help` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from aggregator.errors import AggregatorError, ConfigError, LockedError
from aggregator.options import ALL_TIME, DIGEST_FORMATS, check_query, cutoff

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.models import ArticleView, Delivery, Digest, FeedConfig, StoryView
    from aggregator.store import Store

EXIT_CODES = """\b
Exit codes:
  0  success (a poll with some failed feeds still succeeds)
  1  an error you can act on (the message says what)
  2  bad usage or a bad config
  3  the database cannot be opened or written
  4  a digest could not be mailed (it stays in the outbox;
     the next run sends it)
A run that finds another run holding the lock exits 0.
"""


class App:
    """What every command shares: where the config and database are, and how loud to be."""

    def __init__(self, config_path: Path | None, db: Path | None, verbose: int, quiet: bool):
        self.config_path = config_path
        self.db = db
        self.verbose = verbose
        self.quiet = quiet
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from aggregator.config import load_config

            self._config = load_config(self.config_path, database=self.db)
        return self._config

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """The database, with the config's mute rules applied (at once, when they changed)."""
        from aggregator.store import open_store
        from aggregator.stories import apply_mute

        store = open_store(self.config.database)
        try:
            apply_mute(store, self.config, now=_now())
            yield store
        finally:
            store.close()

    def say(self, message: str, *, err: bool = False) -> None:
        if not self.quiet:
            click.echo(message, err=err)

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """One poll, run or digest at a time (a second exits 0: see AggregatorGroup)."""
        from aggregator.runlock import run_lock

        with run_lock(self.config.database):
            yield


class AggregatorGroup(click.Group):
    """Turns every AggregatorError into a one-line message and an exit code: no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LockedError as e:
            # Overlapping cron runs are normal: say so, and succeed.
            if e.stuck or not (isinstance(ctx.obj, App) and ctx.obj.quiet):
                click.echo(str(e), err=True)
            ctx.exit(0)
        except AggregatorError as e:
            error = click.ClickException(str(e))
            error.exit_code = e.exit_code
            raise error from e


class Since(click.ParamType):
    """``--since 24h`` / ``90m`` / ``7d`` / ``all`` (all: no limit)."""

    name = "DURATION|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta) or value is None:
            return value
        if str(value).strip().lower() == "all":
            return ALL_TIME
        from aggregator.config import parse_duration

        try:
            return parse_duration(value, where="--since")
        except ConfigError as e:
            self.fail(str(e).removeprefix("--since: ") + ", or all", param, ctx)


SINCE = Since()


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _show(plain: Callable[[], str], coloured: Callable[[], Any]) -> None:
    """A coloured table on a terminal (rich, loaded only then), plain text when piped."""
    if not sys.stdout.isatty():
        click.echo(plain(), nl=False)
        return
    from rich.console import Console

    Console(highlight=False).print(coloured())


COUNT = click.IntRange(0)  # --limit: 0 means no limit
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(DIGEST_FORMATS),
    help="Format of a printed digest [default: digest.format].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(cls=AggregatorGroup, epilog=EXIT_CODES)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AGGREGATOR_CONFIG",
    help="Config file [default: ./config.yaml if present, else the user config dir].",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AGGREGATOR_DB",
    help="Database file; overrides `database:` in the config.",
)
@click.option("-v", "--verbose", count=True, help="Say more (-vv for debugging).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@click.version_option(package_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, db: Path | None, verbose: int, quiet: bool):
    """Follow many news feeds as a short list of deduplicated, clustered stories.

    \b
    Example:
      aggregator --config examples/offline.yaml run
    """
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = App(config_path, db, verbose, quiet)


pass_app = click.make_pass_decorator(App)


# --- polling ----------------------------------------------------------------------------------


def _poll(app: App, all_feeds: bool) -> None:
    from aggregator.pipeline import poll as run_poll

    with app.store() as store, _progress_bar(app) as (on_start, progress):
        report = run_poll(
            app.config, store, all_feeds=all_feeds, on_start=on_start, progress=progress
        )
    # Failed feeds are not fatal (they are kept in the database, and `feeds list` shows them),
    # so --quiet leaves them out too: cron mails whatever a job prints.
    for outcome in report.outcomes:
        if outcome.notice:
            app.say(f"note: {outcome.url}: {outcome.notice}", err=True)
    for outcome in report.failed:
        app.say(f"{outcome.status}: {outcome.url}: {outcome.message}", err=True)
    app.say(report.summary(), err=True)


@contextlib.contextmanager
def _progress_bar(app: App) -> Iterator[tuple[Any, Any]]:
    """A progress bar on stderr while polling, only on a terminal and never with --quiet."""
    if app.quiet or not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "polling",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,  # gone when done: the summary line says the rest
    )
    task = bar.add_task("feeds", total=None)
    with bar:
        yield (
            lambda total: bar.update(task, total=total),
            lambda outcome: bar.advance(task),
        )


@cli.command()
@click.option("--all", "all_feeds", is_flag=True, help="Fetch every feed, due or not.")
@pass_app
def poll(app: App, all_feeds: bool) -> None:
    """Fetch the feeds that are due, then store and cluster what is new.

    Failed feeds are listed on stderr and kept in the database; the poll still exits 0.
    `--all` ignores our schedule but never a server's Retry-After, nor a feed that is gone.

    \b
    Example:
      aggregator poll --all
    """
    with app.run_lock():
        _poll(app, all_feeds)


@cli.command()
@click.option("--all", "all_feeds", is_flag=True, help="Fetch every feed, due or not.")
@format_option
@pass_app
def run(app: App, all_feeds: bool, fmt: str | None) -> None:
    """Poll, then deliver the digest: the command for cron.

    With an `email:` section in the config the digest is mailed to `email.to`, otherwise
    printed. Either way it holds only stories that are new, or have gained sources, since the
    last digest; when there are none, no mail is sent. A digest that could not be mailed is
    sent first on the next run. Only one run (or poll, or digest) at a time: another one exits
    0 and says so.

    \b
    Example (crontab, every 15 minutes):
      */15 * * * *  aggregator --quiet --config ~/.config/aggregator/config.yaml run
    """
    with app.run_lock():
        _poll(app, all_feeds)
        # Printed for cron to mail: nothing at all when nothing is new, so no empty mail.
        _deliver(
            app,
            fmt=fmt,
            since=None,
            limit=None,
            to=(),
            printed=False,
            dry_run=False,
            show_empty=False,
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
    from aggregator.listing import ranked_stories

    with app.store() as store:
        found = ranked_stories(
            store,
            since=cutoff(_now(), since),
            min_size=min_size,
            limit=limit,
            recent=app.config.clustering.quiet_after,
            unread=unread,
            feeds=feeds,
            tags=tags,
        )
    if as_json:
        _print_json([s.to_json() for s in found])
    else:
        _show_stories(found)


def _show_stories(found: list[StoryView]) -> None:
    from aggregator.render import render_stories

    def coloured() -> Any:
        from aggregator.terminal import story_table

        return story_table(found)

    _show(lambda: render_stories(found), coloured)


def _show_articles(found: list[ArticleView], as_json: bool) -> None:
    if as_json:
        _print_json([a.to_json() for a in found])
        return
    from aggregator.render import render_articles

    def coloured() -> Any:
        from aggregator.terminal import article_table

        return article_table(found)

    _show(lambda: render_articles(found), coloured)


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
        _print_json(found.to_json(why=why))
    else:
        click.echo(render_story(found, why=why), nl=False)


@story.command("show")
@click.argument("story_id", type=int)
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

    with app.store() as store:
        found = get_story(store, story_id, recent=app.config.clustering.quiet_after)
    _show_story(found, as_json, why=why)


@story.command("merge")
@click.argument("story_ids", type=int, nargs=-1, required=True)
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
        found = merge_stories(store, app.config, story_ids, now=_now())
    _corrected(app, found, as_json, f"merged into story {found.id}")


@story.command("split")
@click.argument("story_id", type=int)
@click.argument("article_ids", type=int, nargs=-1, required=True)
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
        found = split_story(store, app.config, story_id, article_ids, now=_now())
    _corrected(app, found, as_json, f"split off as story {found.id}")


@story.command("move")
@click.argument("article_ids", type=int, nargs=-1, required=True)
@click.option("--to", "to", type=int, required=True, help="The story to move them to.")
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
        found = move_articles(store, app.config, article_ids, to=to, now=_now())
    _corrected(app, found, as_json, f"moved to story {found.id}")


def _corrected(app: App, found: StoryView, as_json: bool, done: str) -> None:
    if as_json:
        _print_json(found.to_json())
    else:
        from aggregator.render import plural

        app.say(f"{done}: [{found.id}] {found.title} ({plural(found.size, 'article')})")


@cli.command()
@click.argument("query", required=False)
@click.option("--since", type=SINCE, default="24h", show_default=True, help="6h, 7d, all...")
@click.option("--limit", default=50, show_default=True, type=COUNT, help="How many; 0 for all.")
@json_option
@pass_app
def articles(app: App, query: str | None, since: timedelta, limit: int, as_json: bool) -> None:
    """List articles first seen within --since, newest first; with QUERY, only those that
    match it, with the matches highlighted (as `search` does).

    \b
    Examples:
      aggregator articles --since 2h --json
      aggregator articles ceasefire --since 7d
    """
    if query is not None:
        check_query(query)
    with app.store() as store:
        start = cutoff(_now(), since)
        if query is None:
            found = store.articles(since=start, limit=limit)
        else:
            found = store.search(query, since=start, limit=limit, muted=False)
    _show_articles(found, as_json)


@cli.command()
@click.argument("query")
@click.option("--since", type=SINCE, default="all", show_default=True, help="6h, 7d, all...")
@click.option("--limit", default=50, show_default=True, type=COUNT, help="How many; 0 for all.")
@json_option
@pass_app
def search(app: App, query: str, since: timedelta, limit: int, as_json: bool) -> None:
    """Full-text search of titles and summaries, newest first, matches highlighted.

    The words are looked for as given (all of them, in any order), never read as query
    syntax. Muted articles are found too, and marked.

    \b
    Example:
      aggregator search "central bank"
    """
    check_query(query)
    with app.store() as store:
        found = store.search(query, since=cutoff(_now(), since), limit=limit)
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
        run_reader(app.config, store, opener=click.launch, since=window)


article_option = click.option(
    "--article", "articles", is_flag=True, help="The ids are articles' (else stories')."
)


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=int)
@article_option
@pass_app
def read(app: App, ids: tuple[int, ...], articles: bool) -> None:
    """Mark stories, or articles with --article, read: a story's articles and their copies.

    \b
    Example:
      aggregator read 12 15
      aggregator read --article 3051
    """
    _mark(app, ids, articles=articles, read=True)


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=int)
@article_option
@pass_app
def unread(app: App, ids: tuple[int, ...], articles: bool) -> None:
    """Mark stories, or articles with --article, unread again.

    \b
    Example:
      aggregator unread 12
    """
    _mark(app, ids, articles=articles, read=False)


def _mark(app: App, ids: tuple[int, ...], *, articles: bool, read: bool) -> None:
    from aggregator.reading import mark
    from aggregator.render import plural

    with app.store() as store:
        changed = mark(store, ids, articles=articles, read=read)
    app.say(f"{plural(changed, 'article')} marked {'read' if read else 'unread'}")


@cli.command(name="open")
@click.argument("id", type=int)
@article_option
@pass_app
def open_link(app: App, id: int, articles: bool) -> None:
    """Open a story's first link, or an article's with --article, in the browser; it is then
    marked read.

    \b
    Example:
      aggregator open 12
    """
    from aggregator.reading import link_to_open

    with app.store() as store:
        url = link_to_open(store, id, article=articles)
    app.say(url)
    click.launch(url)


# --- feeds ------------------------------------------------------------------------------------


@cli.group()
def feeds() -> None:
    """List, add, remove, import and export feeds.

    \b
    Example:
      aggregator feeds list
    """


@feeds.command("list")
@json_option
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """Show each feed with its state: status, errors, next due time.

    \b
    Example:
      aggregator feeds list --json
    """
    from aggregator.listing import feed_report
    from aggregator.render import render_feeds

    with app.store() as store:
        views = feed_report(app.config, store)
    if as_json:
        _print_json([v.to_json() for v in views])
    else:
        click.echo(render_feeds(views), nl=False)


def _config_file(app: App) -> Path:
    """The file `feeds add/remove` edit: --config, else the default location (may not exist)."""
    from aggregator.config import default_config_path

    return app.config_path or default_config_path()


@feeds.command("add")
@click.argument("url")
@click.option("--title", help="A name for the feed (else the feed's own title).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option("--no-check", is_flag=True, help="Add without fetching the feed first.")
@pass_app
def feeds_add(app: App, url: str, title: str | None, tags: tuple[str, ...], no_check: bool):
    """Check that URL is a feed, then add it to the config file.

    \b
    Example:
      aggregator feeds add https://example.org/rss.xml --tag world
    """
    from aggregator.config import PollingConfig, resolve_feed_location
    from aggregator.feedlist import add_feed_to_file
    from aggregator.models import FeedConfig
    from aggregator.render import plural

    path = _config_file(app)
    location = resolve_feed_location(url, Path.cwd())
    found = ""
    if not no_check:
        from aggregator.fetch_once import check_feed

        # A config that does not exist yet is created by the add: check with the defaults.
        polling = app.config.polling if path.exists() else PollingConfig()
        feed_title, count = check_feed(location, polling)
        found = f": {feed_title or 'untitled'}, {plural(count, 'item')}"
    add_feed_to_file(path, FeedConfig(url=location, title=title, tags=tags))
    app.say(f"Added {location}{found} (to {path})")


@feeds.command("remove")
@click.argument("url")
@pass_app
def feeds_remove(app: App, url: str) -> None:
    """Remove a feed from the config file (its articles stay in the database).

    \b
    Example:
      aggregator feeds remove https://example.org/rss.xml
    """
    from aggregator.feedlist import remove_feed_from_file

    path = _config_file(app)
    remove_feed_from_file(path, url)
    app.say(f"Removed {url} (from {path})")


def _feed_json(feed: FeedConfig) -> dict[str, Any]:
    return {"url": feed.url, "title": feed.title, "tags": list(feed.tags)}


@feeds.command("import")
@click.argument("source")
@click.option(
    "--tag", "tags", multiple=True, help="A tag for every imported feed; repeat for more."
)
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@json_option
@pass_app
def feeds_import(
    app: App, source: str, tags: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Add the feeds of an OPML subscription list (a file, or an http(s) URL) to the config.

    Folders in the list become tags. Feeds already in the config are left as they are, and
    feeds that are not http(s) URLs are skipped with the reason on stderr. The feeds themselves
    are not fetched, so a list of a thousand imports in a moment: `feeds list` shows any that
    fail after the next poll.

    \b
    Example:
      aggregator feeds import ~/Downloads/subscriptions.opml --tag imported --dry-run
    """
    from aggregator.config import PollingConfig, resolve_feed_location
    from aggregator.feedlist import add_feeds_to_file
    from aggregator.fetch_once import fetch_document
    from aggregator.opml import read_opml
    from aggregator.render import plural

    path = _config_file(app)
    location = resolve_feed_location(source, Path.cwd())
    polling = app.config.polling if path.exists() else PollingConfig()
    listing = read_opml(fetch_document(location, polling), source, extra_tags=tags)
    added, present = add_feeds_to_file(path, listing.feeds, dry_run=dry_run)
    if as_json:
        _print_json(
            {
                "config": str(path),
                "dry_run": dry_run,
                "added": [_feed_json(f) for f in added],
                "already_present": [_feed_json(f) for f in present],
                "skipped": [s.to_json() for s in listing.skipped],
            }
        )
        return
    for skipped in listing.skipped:
        app.say(f"skipped {skipped.url}: {skipped.reason}", err=True)
    if dry_run:
        for feed in added:
            labels = f" [{', '.join(feed.tags)}]" if feed.tags else ""
            app.say(f"+ {feed.url}  {feed.title or ''}{labels}".rstrip())
    verb = "Would import" if dry_run else "Imported"
    app.say(
        f"{verb} {plural(len(added), 'feed')} ({len(present):,} already present, "
        f"{len(listing.skipped):,} skipped) to {path}"
    )


@feeds.command("export")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", atomic=True),
    help="Write to this file (atomically) instead of stdout.",
)
@pass_app
def feeds_export(app: App, output: TextIO | None) -> None:
    """Write the configured feeds as an OPML 2.0 subscription list, for other feed readers.

    Tags become folders (a feed sits in the folder of its first tag) and each feed's tags are
    kept in its `category` attribute, so `feeds import` of the export gives the same tags.

    \b
    Example:
      aggregator feeds export -o subscriptions.opml
    """
    from aggregator.opml import render_opml
    from aggregator.render import plural

    configured = app.config.feeds
    document = render_opml(configured, title="aggregator subscriptions", now=_now())
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write(document)
        app.say(f"Exported {plural(len(configured), 'feed')} to {output.name}", err=True)


# --- digest and eval --------------------------------------------------------------------------


def _deliver(
    app: App,
    *,
    fmt: str | None,
    since: timedelta | None,
    limit: int | None,
    to: tuple[str, ...],
    printed: bool,
    dry_run: bool,
    show_empty: bool = True,
) -> None:
    from aggregator.delivery import mail_digests, print_digest
    from aggregator.models import DeliveryOutcome
    from aggregator.render import plural, render_digest

    config = app.config
    fmt = fmt or config.digest.format

    def write(found: Digest) -> None:
        if found.entries or show_empty:
            click.echo(render_digest(found, fmt, links=config.digest.links), nl=False)
        else:
            app.say("Nothing new since the last digest.", err=True)

    def say(delivery: Delivery) -> None:
        # A failed one says nothing here: mail_digests raises DeliveryError naming them all.
        if delivery.outcome == DeliveryOutcome.PREVIEW and delivery.digest is not None:
            click.echo(f"To: {delivery.recipient}\nSubject: {delivery.subject}\n")
            write(delivery.digest)
            if delivery.error:
                click.echo(f"note: {delivery.error}", err=True)
        elif delivery.outcome in (DeliveryOutcome.SENT, DeliveryOutcome.RESENT):
            again = " (from the outbox)" if delivery.outcome == DeliveryOutcome.RESENT else ""
            app.say(
                f"Mailed a digest of {plural(delivery.stories, 'story')} to "
                f"{delivery.recipient}{again}",
                err=True,
            )
        elif delivery.outcome == DeliveryOutcome.NOTHING_NEW:
            app.say(f"Nothing new for {delivery.recipient}: no mail sent", err=True)

    with app.store() as store:
        if printed or (config.email is None and not to):
            print_digest(config, store, write, since=since, limit=limit, dry_run=dry_run)
            return
        mail_digests(config, store, to=to, since=since, limit=limit, dry_run=dry_run, report=say)


@cli.command()
@format_option
@click.option(
    "--since",
    type=SINCE,
    help="Every story active in this window (6h, 7d, all), shown before or not "
    "[default: what is new since your last digest].",
)
@click.option("--limit", type=COUNT, help="How many stories; 0 for all [default: digest.limit].")
@click.option(
    "--to",
    "to",
    multiple=True,
    metavar="ADDRESS",
    help="Mail it to this address instead of email.to (repeatable).",
)
@click.option("--print", "printed", is_flag=True, help="Print it, even with an email: section.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and remember nothing.")
@pass_app
def digest(
    app: App,
    fmt: str | None,
    since: timedelta | None,
    limit: int | None,
    to: tuple[str, ...],
    printed: bool,
    dry_run: bool,
) -> None:
    """Deliver a digest of the stories that are new, or have grown, since the last one.

    Mailed with an `email:` section in the config (to `email.to`, or `--to`), else printed.
    Each recipient has their own state: a story comes again only when it has gained sources,
    marked "+N sources since your last digest". `run` is `poll` then this.

    \b
    Examples:
      aggregator digest --dry-run
      aggregator digest --print --format markdown --since 12h
      aggregator digest --to me@example.org
    """
    if printed and to:
        raise click.UsageError("--print and --to do not go together")
    # A dry run changes nothing, so it needs no lock.
    with contextlib.nullcontext() if dry_run else app.run_lock():
        _deliver(app, fmt=fmt, since=since, limit=limit, to=to, printed=printed, dry_run=dry_run)


@cli.command("eval")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.option(
    "--assignments",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write each item's predicted story to this CSV (ID,PREDICTED).",
)
@pass_app
def eval_command(app: App, labels: Path, as_json: bool, assignments: Path | None) -> None:
    """Score the story clusterer against labelled headlines.

    LABELS is a CSV with ID, TITLE, PUBLISHER, STORY and TIMESTAMP (ms, UTC) columns (URL,
    HOSTNAME and SUMMARY optional). Rows are replayed in time order through the clusterer and
    configuration that `poll` uses.

    \b
    Example:
      aggregator eval ../shared/data/uci-news-stories-dev.csv
    """
    from aggregator.evaluate import evaluate, read_labels, write_assignments
    from aggregator.render import render_eval

    report = evaluate(read_labels(labels), app.config.clustering)
    if assignments is not None:
        write_assignments(report, assignments)
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(render_eval(report), nl=False)


def _now() -> datetime:
    return datetime.now(UTC)


if __name__ == "__main__":  # pragma: no cover
    cli()
