"""The cron side: `poll`, `run`, `digest`, and `eval` of the clusterer."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from aggregator.models import Delivery, Digest

from .app import (
    COUNT,
    SINCE,
    App,
    cli,
    format_option,
    json_option,
    pass_app,
    print_json,
)

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

    with app.store(read_only=dry_run) as store:
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
    from aggregator.config import ClusteringConfig
    from aggregator.evaluate import evaluate, read_labels, write_assignments
    from aggregator.render import render_eval

    # The clusterer as configured; with no config at all, as it comes (eval needs no feeds).
    clustering = app.config.clustering if app.has_config() else ClusteringConfig()
    report = evaluate(read_labels(labels), clustering)
    if assignments is not None:
        write_assignments(report, assignments)
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(render_eval(report), nl=False)
