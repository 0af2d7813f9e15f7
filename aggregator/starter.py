"""The config `aggregator init` writes: the starter file, and the steps that follow it."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError

__all__ = ["Starter", "cron_program", "starter_text", "write_starter"]


@dataclass(frozen=True)
class Starter:
    """A starter config just written, and the commands to run next."""

    path: Path
    feeds: int
    steps: tuple[str, ...]  # poll, browse, the crontab line


def starter_text() -> str:
    """The starter config: real world-news feeds, the digest, a commented email: block."""
    return resources.files("aggregator").joinpath("templates/config.yaml").read_text("utf-8")


def write_starter(path: Path, *, default: bool, program: str) -> Starter:
    """Write the starter config at ``path``, never over an existing file.

    ``default``: ``path`` is where aggregator looks without --config, so the next steps need
    none. ``program``: how cron should call aggregator, as shell words (see cron_program).
    """
    text = starter_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": created here or not at all, so a file that appeared meanwhile is not replaced.
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists already; aggregator init never overwrites a config "
            "(edit it, or give init another path)"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the config: {e.strerror or e}") from e
    config = "" if default else f" --config {shlex.quote(str(path.resolve()))}"
    feeds = sum(1 for line in text.splitlines() if line.startswith("  - url: "))
    steps = (
        f"aggregator{config} poll",
        f"aggregator{config} browse",
        f"*/30 * * * *  {program} --quiet{config} run",
    )
    return Starter(path=path, feeds=feeds, steps=steps)


def cron_program() -> str:
    """The aggregator program as cron must name it: an absolute path."""
    import shutil
    import sys

    found = shutil.which("aggregator")
    if found:
        return shlex.quote(os.path.abspath(found))
    return f"{shlex.quote(sys.executable)} -m aggregator"
