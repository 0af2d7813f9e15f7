"""`init`: the first command of a new user, which writes a starter config."""

from __future__ import annotations

from pathlib import Path

import click

from .app import App, cli, pass_app


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def init(app: App, path: Path | None) -> None:
    """Write a starter config: world-news feeds, the digest, email ready to fill in.

    PATH defaults to config.yaml in the user config folder ($XDG_CONFIG_HOME/aggregator, else
    ~/.config/aggregator), where aggregator looks when no --config is given. An existing file
    is never overwritten. Then it prints the next three steps: poll, browse, and the crontab
    line that runs aggregator every 30 minutes.

    \b
    Example:
      aggregator init
      aggregator init ~/news/config.yaml
    """
    from aggregator.config import config_dir
    from aggregator.starter import cron_program, write_starter

    default = config_dir() / "config.yaml"
    target = path or app.config_path or default
    # Without --config, ./config.yaml would be read first: then the steps name the file.
    plain = target.resolve() == default.resolve() and not Path("config.yaml").is_file()
    starter = write_starter(target, default=plain, program=cron_program())
    app.say(f"Wrote {starter.path} with {starter.feeds} world-news feeds. Next:")
    poll, browse, cron = starter.steps
    app.say(f"  1. {poll}    # fetch the feeds, store and cluster (a minute the first time)")
    app.say(f"  2. {browse}  # read the stories")
    app.say("  3. crontab -e, and add this line: it polls every 30 minutes, and prints the digest")
    app.say("     at 07:00 and 18:00 (digest.at; cron mails what it prints, or set up email:")
    app.say(f"     in {starter.path.name}):")
    app.say(f"     {cron}")
