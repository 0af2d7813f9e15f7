"""What every command shares: the `aggregator` group, its options and the App they reach.

Errors: every AggregatorError becomes a one-line message and its exit code here, in
AggregatorGroup, and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.errors import AggregatorError, ConfigError, LockedError
from aggregator.options import ALL_TIME, DIGEST_FORMATS

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.store import Store

EXIT_CODES = """\b
Exit codes:
  0  success (a poll with some failed feeds still succeeds)
  1  an error you can act on (the message says what)
  2  bad usage or a bad config
  3  the database cannot be opened or written
  4  a digest could not be mailed (it stays in the outbox;
     the next run sends it)
  5  run: every feed it polled failed (the network?), or a
     feed has failed for longer than polling.alert_after
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
            apply_mute(store, self.config, now=now())
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
            error.exit_code = e.exit_code  # type: ignore[misc]  # click reads it from the instance
            raise error from e


class Since(click.ParamType):  # type: ignore[type-arg]  # generic in newer click only
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


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def show(plain: Callable[[], str], coloured: Callable[[], Any]) -> None:
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
article_option = click.option(
    "--article", "articles", is_flag=True, help="The ids are articles' (else stories')."
)


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
def cli(
    ctx: click.Context, config_path: Path | None, db: Path | None, verbose: int, quiet: bool
) -> None:
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


def now() -> datetime:
    return datetime.now(UTC)
