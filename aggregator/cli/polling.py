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
    from aggregator.models import Delivery, Digest, PollReport

from .app import (
    COUNT,
    SINCE,
    App,
    cli,
    format_option,
    json_option,
    now,
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
    _say_outcomes(app, report)
    app.say(report.summary(), err=True)


def _say_outcomes(app: App, report: PollReport) -> None:
    # Failed feeds are not fatal (they are kept in the database, and `feeds list` shows them),
    # so --quiet leaves them out too: cron mails whatever a job prints. `run` says when the
    # failures call for attention (FeedsFailingError).
    for outcome in report.outcomes:
        if outcome.notice:
            app.say(f"note: {outcome.url}: {outcome.notice}", err=True)
    for outcome in report.failed:
        app.say(f"{outcome.status}: {outcome.url}: {outcome.message}", err=True)


def _say_delivery(app: App, delivery: Delivery) -> None:
    """A line on a mailed digest. A failed one says nothing here: the DeliveryError at the
    end names them all. Nothing new is said by `run`'s one line, or by `digest`."""
    from aggregator.models import DeliveryOutcome
    from aggregator.render import plural

    if delivery.outcome in (DeliveryOutcome.SENT, DeliveryOutcome.RESENT):
        again = " (from the outbox)" if delivery.outcome == DeliveryOutcome.RESENT else ""
        app.say(
            f"Mailed a digest of {plural(delivery.stories, 'story')} to "
            f"{delivery.recipient}{again}",
            err=True,
        )


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
    """Poll, then deliver the digest if one is due: the command for cron.

    Every run polls the feeds that are due. A digest is due at the times of `digest.at`
    (once each, however many runs pass them; a machine that slept through several sends
    one), or on every run without it. It is mailed with an `email:` section, else printed,
    and holds only stories that are new, or have gained sources, since the last digest: when
    there are none, nothing is sent. A digest that could not be mailed is sent first on the
    next run. Only one run (or poll, or digest) at a time: another one exits 0 and says so.

    With --quiet a run prints nothing, unless every feed it polled failed or a feed has
    failed for longer than `polling.alert_after` (said once a day): then one line, and exit 5.

    \b
    Example (crontab, every 30 minutes, with digest.at: ["07:00", "18:00"]):
      */30 * * * *  aggregator --quiet --config ~/.config/aggregator/config.yaml run
    """
    from aggregator.cron import cron_run
    from aggregator.errors import FeedsFailingError
    from aggregator.render import render_digest, render_run

    config = app.config
    fmt = fmt or config.digest.format

    def write(found: Digest) -> None:
        click.echo(render_digest(found, fmt, links=config.digest.links), nl=False)

    with app.run_lock(), app.store() as store, _progress_bar(app) as (on_start, progress):
        started = now()
        result = cron_run(
            config,
            store,
            write=write,
            now=started,
            all_feeds=all_feeds,
            report=lambda delivery: _say_delivery(app, delivery),
            on_start=on_start,
            progress=progress,
        )
    _say_outcomes(app, result.poll)
    app.say(render_run(result, started), err=True)
    if result.alert:
        raise FeedsFailingError(result.alert)


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
) -> None:
    from aggregator.delivery import mail_digests, print_digest
    from aggregator.models import DeliveryOutcome
    from aggregator.render import render_digest

    config = app.config
    fmt = fmt or config.digest.format

    def write(found: Digest) -> None:
        if dry_run and not found.shown:
            click.echo("nothing new: nothing would be printed")
        else:
            click.echo(render_digest(found, fmt, links=config.digest.links), nl=False)

    def say(delivery: Delivery) -> None:
        if delivery.outcome == DeliveryOutcome.PREVIEW and delivery.digest is not None:
            if delivery.digest.shown:
                click.echo(f"To: {delivery.recipient}\nSubject: {delivery.subject}\n")
                write(delivery.digest)
            else:
                click.echo(f"nothing new: no mail would be sent to {delivery.recipient}")
            if delivery.error:
                click.echo(f"note: {delivery.error}", err=True)
        elif delivery.outcome == DeliveryOutcome.NOTHING_NEW:
            app.say(f"Nothing new for {delivery.recipient}: no mail sent", err=True)
        else:
            _say_delivery(app, delivery)

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
@click.option(
    "--limit",
    type=COUNT,
    help="How many stories at most; 0 for all [default: digest.limit in full, "
    "the rest one line each].",
)
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
