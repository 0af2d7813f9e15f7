"""`aggregator` in a process of its own, optionally killed -9 at a chosen step.

Used by the fault tests and by benchmarks/cron_replay.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def aggregator_process(
    config: Path,
    *args: str,
    kill_in: str | None = None,
    max_file_size: int | None = None,
    timeout: float = 120,
    clock: datetime | None = None,
) -> subprocess.CompletedProcess[str]:
    """`aggregator --config CONFIG ARGS` in its own process; ``kill_in`` ("module:Class.method"
    or "module:function") is replaced by a kill -9 of that process, to crash it right there.
    ``max_file_size`` (bytes) is the process's RLIMIT_FSIZE: no file it writes may grow past
    it, as on a full disk. ``clock`` is the time the commands take it to be (`run`'s clock)."""
    patch = ""
    if clock is not None:
        patch += (
            "import datetime, aggregator.cli.polling as polling\n"
            f"polling.now = lambda: datetime.datetime.fromisoformat({clock.isoformat()!r})\n"
        )
    if max_file_size is not None:
        patch += (
            "import resource\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({max_file_size}, {max_file_size}))\n"
        )
    if kill_in:
        module, _, attribute = kill_in.partition(":")
        owner, _, name = attribute.rpartition(".")
        target = f"target.{owner}" if owner else "target"
        patch += (
            f"import {module} as target\n"
            "def crash(*args, **kwargs):\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            f"setattr({target}, {name!r}, crash)\n"
        )
    script = f"import os, signal, sys\n{patch}from cli import cli\ncli(sys.argv[1:])\n"
    return subprocess.run(
        [sys.executable, "-c", script, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
    )
