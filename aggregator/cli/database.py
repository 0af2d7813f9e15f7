"""The database: `db prune` (what `poll` does once a day) and `db stats`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from .app import App, cli, json_option, now, pass_app, print_json


class Keep(click.ParamType):  # type: ignore[type-arg]  # generic in newer click only
    """``--keep 30d`` / ``all``, as ``database.keep`` is written."""

    name = "DURATION|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from aggregator.config import parse_keep
        from aggregator.errors import ConfigError

        try:
            return parse_keep(value, where="--keep")
        except ConfigError as e:
            self.fail(str(e).removeprefix("--keep: "), param, ctx)


@cli.group()
def db() -> None:
    """Look after the database: prune what is older than database.keep, see its size.

    \b
    Examples:
      aggregator db stats
      aggregator db prune --dry-run
    """


@db.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.option("--keep", type=Keep(), help="Keep this long instead of database.keep (e.g. 30d).")
@json_option
@pass_app
def prune(app: App, dry_run: bool, keep: timedelta | None, as_json: bool) -> None:
    """Remove articles first seen longer ago than database.keep (saved ones never), the stories
    left empty, and give the space back. `poll` and `run` do this once a day by themselves.

    \b
    Example:
      aggregator db prune --dry-run
    """
    from aggregator.render import render_prune
    from aggregator.retention import prune as run_prune

    keep = keep or app.config.keep
    if keep is None:
        app.say("database.keep is all: nothing is pruned")
        return
    if dry_run:  # reads only: no lock, and a read-only database will do
        with app.store(read_only=True) as store:
            report = run_prune(store, keep, now(), dry_run=True)
    else:
        with app.run_lock(), app.store() as store:
            report = run_prune(store, keep, now())
    if as_json:
        print_json(report.to_json())
    else:
        app.say(render_prune(report), err=False)


@db.command()
@json_option
@pass_app
def stats(app: App, as_json: bool) -> None:
    """The database's size, its articles and stories, the oldest article, and what the next
    prune would remove.

    \b
    Example:
      aggregator db stats
    """
    from aggregator.render import render_stats
    from aggregator.retention import database_stats

    with app.store(read_only=True) as store:
        found = database_stats(store, app.config.keep, now())
    if as_json:
        print_json(found.to_json())
    else:
        click.echo(render_stats(found), nl=False)
