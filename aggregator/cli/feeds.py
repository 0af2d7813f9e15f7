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
@click.option("--title", help="A name for the feed (else the feed's own title).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option("--no-check", is_flag=True, help="Add without fetching the feed first.")
@pass_app
def feeds_add(app: App, url: str, title: str | None, tags: tuple[str, ...], no_check: bool) -> None:
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
        print_json(
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
    document = render_opml(configured, title="aggregator subscriptions", now=now())
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write(document)
        app.say(f"Exported {plural(len(configured), 'feed')} to {output.name}", err=True)
