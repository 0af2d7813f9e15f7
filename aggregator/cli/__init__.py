"""The `aggregator` command. Thin: each command parses options, calls one library function, and
prints what it returns.

Heavy modules (the pipeline, scikit-learn, feedparser, rich, Textual) are imported inside the
commands, so `aggregator --help` stays fast. The commands live in one module per area
(``setup``, ``polling``, ``reading``, ``feeds``, ``database``), each adding its commands to
the group in ``app``.
"""

from __future__ import annotations

from . import database, feeds, polling, reading, setup
from .app import cli

__all__ = ["cli", "main"]

_COMMANDS = (setup, feeds, polling, reading, database)  # imported for the commands they add


def main() -> None:
    """The console script, ``python -m aggregator`` and the top-level ``cli.py``."""
    cli(prog_name="aggregator")
