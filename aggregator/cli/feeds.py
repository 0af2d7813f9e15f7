"""`feeds`: list, add, remove, import and export the feeds of the config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from aggregator.models import FeedConfig

from .app import (
    App,
    cli,
    json_option,
    now,
    pass_app,
    print_json,
)

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

    with app.store(read_only=True) as store:
        views = feed_report(app.config, store)
    if as_json:
        print_json([v.to_json() for v in views])
    else:
        click.echo(render_feeds(views), nl=False)


def _config_file(app: App) -> Path:
    """The file `feeds add/remove` edit: --config, else the default location (may not exist)."""
    from aggregator.config import default_config_path

    return app.config_path or default_config_path()


@feeds.command("add")
@click.argument("url")
@click.option("--title", help="A name for the feed [default: the feed's own title].")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option(
    "--pick",
    type=click.IntRange(1),
    metavar="N",
    help="For a web page that advertises several feeds: add the Nth it lists.",
)
@click.option("--no-check", is_flag=True, help="Add without fetching the feed first.")
@pass_app
def feeds_add(
    app: App,
    url: str,
    title: str | None,
    tags: tuple[str, ...],
    pick: int | None,
    no_check: bool,
) -> None:
    """Check that URL is a feed, then add it to the config file, with its own title unless
    --title gives one.

    URL may be a web page: the feed it advertises (<link rel="alternate">) is added, and when
    it advertises several they are listed to choose from with --pick. An address without a
    scheme (example.org/rss) is tried over https, then http.

    \b
    Examples:
      aggregator feeds add https://example.org/rss.xml --tag world
      aggregator feeds add example.org --pick 2
    """
    from aggregator.config import PollingConfig, resolve_feed_location
    from aggregator.feedlist import add_feed_to_file
    from aggregator.fetch_once import find_feed, web_candidates
    from aggregator.models import FeedConfig
    from aggregator.render import plural

    path = _config_file(app)
    candidates = web_candidates(url) or [resolve_feed_location(url, Path.cwd())]
    location = candidates[0]
    found = ""
    if not no_check:
        # A config that does not exist yet is created by the add: check with the defaults.
        polling = app.config.polling if path.exists() else PollingConfig()
        feed = find_feed(candidates, polling, pick=pick)
        location, title = feed.url, title or feed.title
        found = f": {feed.title or 'untitled'}, {plural(feed.entries, 'item')}"
        if feed.page:
            found += f", advertised by {feed.page}"
    add_feed_to_file(path, FeedConfig(url=location, title=title, tags=tags))
    app.say(f"Added {location}{found} (to {path})")


@feeds.command("remove")
@click.argument("feed")
@pass_app
def feeds_remove(app: App, feed: str) -> None:
    """Remove a feed, named by its URL or its title, from the config file (its articles stay
    in the database).

    \b
    Examples:
      aggregator feeds remove https://example.org/rss.xml
      aggregator feeds remove "Example News"
    """
    from aggregator.feedlist import remove_feed_from_file

    path = _config_file(app)
    removed = remove_feed_from_file(path, feed)
    app.say(f"Removed {removed} (from {path})")


def _feed_json(feed: FeedConfig) -> dict[str, Any]:
    return {"url": feed.url, "title": feed.title, "tags": list(feed.tags)}


@feeds.command("import")
@click.argument("source")
@click.option(
    "--tag", "tags", multiple=True, help="A tag for every imported feed; repeat for more."
)
@click.option(
    "--local-files",
    is_flag=True,
    help="Import the local (file://) feeds of a list that is a file of yours, too.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@json_option
@pass_app
def feeds_import(
    app: App,
    source: str,
    tags: tuple[str, ...],
    local_files: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Add the feeds of an OPML subscription list (a file, or an http(s) URL) to the config.

    Folders in the list become tags. Feeds already in the config are left as they are, and
    counted as already present. Feeds that are not http(s) URLs are skipped with the reason on
    stderr; with --local-files, the local feeds (file://) of a list that is itself a file of
    yours, such as one `feeds export` wrote, are imported too. The feeds themselves
    are not fetched, so a list of a thousand imports in a moment: `feeds list` shows any that
    fail after the next poll.

    \b
    Example:
      aggregator feeds import ~/Downloads/subscriptions.opml --tag imported --dry-run
    """
    from aggregator.config import PollingConfig, resolve_feed_location
    from aggregator.feedlist import add_feeds_to_file
    from aggregator.fetch_once import fetch_document
    from aggregator.opml import NOT_WEB, SkippedOutline, read_opml
    from aggregator.render import plural

    path = _config_file(app)
    location = resolve_feed_location(source, Path.cwd())
    polling = app.config.polling if path.exists() else PollingConfig()
    listing = read_opml(
        fetch_document(location, polling), source, extra_tags=tags, local_files=True
    )
    # Local feeds (file://) come only from a list of the user's own, and only when asked for;
    # one the config has already is reported as present all the same.
    own_list = "://" not in location or location.lower().startswith("file://")
    configured = {f.url for f in app.config.feeds} if path.exists() else set()
    feeds, skipped = [], list(listing.skipped)
    for feed in listing.feeds:
        if "://" in feed.url or (own_list and local_files) or feed.url in configured:
            feeds.append(feed)
        else:
            skipped.append(SkippedOutline(Path(feed.url).as_uri(), feed.title, NOT_WEB))
    added, present = add_feeds_to_file(path, feeds, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "config": str(path),
                "dry_run": dry_run,
                "added": [_feed_json(f) for f in added],
                "already_present": [_feed_json(f) for f in present],
                "skipped": [s.to_json() for s in skipped],
            }
        )
        return
    for outline in skipped:
        app.say(f"skipped {outline.url}: {outline.reason}", err=True)
    if dry_run:
        for feed in added:
            labels = f" [{', '.join(feed.tags)}]" if feed.tags else ""
            app.say(f"+ {feed.url}  {feed.title or ''}{labels}".rstrip())
    verb = "Would import" if dry_run else "Imported"
    app.say(
        f"{verb} {plural(len(added), 'feed')} ({len(present):,} already present, "
        f"{len(skipped):,} skipped) to {path}"
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
    document = render_opml(configured, title="aggregator subscriptions", now=now())
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write(document)
        app.say(f"Exported {plural(len(configured), 'feed')} to {output.name}", err=True)
