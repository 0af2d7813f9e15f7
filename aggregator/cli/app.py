"""What every command shares: the `aggregator` group, its options and the App they reach.

Errors: every AggregatorError becomes a one-line message and its exit code here, in
AggregatorGroup, and nowhere else.
"""

from __future__ import annotations

import contextlib
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
        """The config: --config, else ./config.yaml, else the user's; none at all is an error
        that says how to make one (`aggregator init`)."""
        if self._config is None:
            from aggregator.config import default_config_path, load_config

            if self.config_path is None and not default_config_path().is_file():
                raise ConfigError(
                    f"no config found at {default_config_path()} (nor ./config.yaml); "
                    "run `aggregator init` to write one"
                )
            if self.db is not None and not self.db.parent.exists():
                raise ConfigError(
                    f"--db {self.db}: the folder {self.db.parent} does not exist; create it "
                    "first, or give another path"
                )
            self._config = load_config(self.config_path, database=self.db)
        return self._config

    def has_config(self) -> bool:
        """Whether there is a config to read (--config, ./config.yaml or the user's)."""
        from aggregator.config import default_config_path

        return self.config_path is not None or default_config_path().is_file()

    @contextlib.contextmanager
    def store(self, *, read_only: bool = False) -> Iterator[Store]:
        """The database, with the config's mute rules applied (at once, when they changed).

        ``read_only``: what a command that only reads needs. A database the user may only
        read then works, as it is (mute rules that changed since the last write wait for it).
        """
        from aggregator.store import open_store

        store = open_store(self.config.database, read_only=read_only)
        try:
            mute = self.config.mute
            # No rules, and none applied before (the key of no rules is ""): nothing to do, and
            # story-making, with the clusterer, stays unloaded.
            idle = not (mute.terms or mute.feeds) and store.mute_is_current("")
            if not store.read_only and not idle:
                from aggregator.stories import apply_mute

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
        except KeyboardInterrupt:
            # Ctrl-C: each step commits or rolls back as a whole, so the database is as the
            # last finished step left it. 130 is what a shell reports for SIGINT.
            click.echo("interrupted; nothing half-done was kept", err=True)
            ctx.exit(130)
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
            if "century" in str(e):
                self.fail(f"{value} is more than a century; for no limit, say all", param, ctx)
            self.fail(
                f"wants a duration with a unit such as 6h or 7d, or all; got {value}", param, ctx
            )


SINCE = Since()


class ItemId(click.ParamType):  # type: ignore[type-arg]  # generic in newer click only
    """An id as text output shows it: a story's ``43``, or an article's ``a43``.

    ``kind`` is what the argument takes: "story", "article" (a bare number is an article's
    too), or "either" (a bare number is a story's; the value is then ``(is_article, id)``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = {"story": "STORY", "article": "ARTICLE", "either": "ID"}[kind]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | tuple):
            return value
        text = str(value).strip()
        article = text[:1] in ("a", "A")
        number = text[1:] if article else text
        if not number.isascii() or not number.isdigit():
            self.fail(f"{value!r} is not an id: a story's is a number (43), an article's "
                      "is a number after an a (a43)", param, ctx)  # fmt: skip
        if article and self.kind == "story":
            self.fail(f"{text} is an article; this takes a story id (the [43] of `stories`)",
                      param, ctx)  # fmt: skip
        if self.kind == "either":
            return (article, int(number))
        return int(number)


STORY_ID, ARTICLE_ID, EITHER_ID = ItemId("story"), ItemId("article"), ItemId("either")


def print_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def show(plain: Callable[[], str], coloured: Callable[[], Any]) -> None:
    """A coloured table on a terminal (rich, loaded only then), plain text when piped."""
    if not sys.stdout.isatty():
        click.echo(plain(), nl=False)
        return
    from rich.console import Console

    Console(highlight=False).print(coloured())


class Count(click.IntRange):
    """``--limit``: 0 or more, where 0 means no limit. A number beyond what SQLite counts
    (``--limit 99999999999999999999``) means all there is, as 0 does."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        count = super().convert(value, param, ctx)
        return 0 if count >= 2**62 else count


COUNT = Count(0)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(DIGEST_FORMATS),
    help="Format of a printed digest [default: digest.format].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
article_option = click.option(
    "--article", "articles", is_flag=True, help="Bare ids are articles' too (a43 always is one)."
)


def _terminal_width() -> int:
    """The width click's help would take, measured as shutil does (COLUMNS, else the terminal)
    but with os alone: shutil brings three compression modules that `--help` has no use for."""
    import os

    columns = os.environ.get("COLUMNS", "")
    if not columns.isdigit():
        try:
            columns = str(os.get_terminal_size(1).columns)
        except OSError:
            columns = "80"
    return max(min(int(columns), 80) - 2, 50)


@click.group(
    cls=AggregatorGroup, epilog=EXIT_CODES, context_settings={"terminal_width": _terminal_width()}
)
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
    import logging  # here, not at the top: `--help` never gets this far

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
