"""One run at a time: an flock on a file beside the database.

Cron starts `aggregator run` on a schedule whether or not the last run has finished. Two runs
at once would fetch every feed twice and could build two digests from one state, so a run
takes an exclusive, non-blocking flock on ``<database>.lock`` and a second run stops at once
with ``LockedError``. The kernel drops the lock when the process ends, however it ends (kill -9
included), so a crashed run never leaves a stale lock behind. The file itself stays; it holds
the pid and start time of the run that has it, which the second run reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .errors import LockedError, StorageError

__all__ = ["lock_path", "run_lock"]

STUCK_AFTER = timedelta(hours=1)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def run_lock(database: Path, *, now: datetime | None = None) -> Iterator[None]:
    """Hold the run lock of ``database`` for the ``with`` block, or raise ``LockedError``."""
    path = lock_path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StorageError(
            f"cannot open the database {database}: cannot create its run lock {path} ({e.strerror})"
        ) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held(path, fd, now or datetime.now(UTC)) from None
        started = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _held(path: Path, fd: int, now: datetime) -> LockedError:
    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    started = None
    if len(holder) == 2:
        with contextlib.suppress(ValueError):
            started = datetime.fromisoformat(holder[1])
    who = f" (pid {holder[0]}, started {holder[1]})" if started else ""
    error = LockedError(f"another aggregator run holds the lock {path}{who}; this one did nothing")
    # The kernel frees the lock when its process ends, so a held lock is a live run. One that
    # has run for an hour is stuck, and worth saying even under --quiet.
    error.stuck = started is not None and now - started > STUCK_AFTER
    return error
