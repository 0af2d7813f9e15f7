"""The CPU-bound part of a poll, parse and normalize, spread over worker processes.

feedparser is pure Python and takes about a millisecond an item, so while one process waits on
the network the others parse. ``read_document`` is pure (bytes in, a Document out) and both its
arguments and its result pickle, which is what lets it run in another process.

``ParserPool`` is the seam: with no workers it parses in the calling process (few feeds, where
starting processes would cost more than it saves); with workers it uses a process pool started
through a fork server, which is safe while the poller has threads of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any, TypeVar

from .errors import ParseError
from .models import Document, ParsedEntry
from .normalize import html_to_text, normalize_entry
from .parse import parse_feed

__all__ = ["MAX_ENTRIES", "ParserPool", "default_workers", "newest_entries", "read_document"]

# A document's entries beyond this many, the oldest, are left out: each one costs parsing,
# storing and clustering, and no news feed carries this many at once (a hostile one might).
MAX_ENTRIES = 1000
# Seconds a document may take to parse and normalize before it is given up.
PARSE_DEADLINE = 10.0
_DAWN = datetime.min.replace(tzinfo=UTC)
# Below this many feeds to fetch, parsing in-process is quicker than starting workers.
POOL_MIN_FEEDS = 16
PRELOAD = ("aggregator.pipeline", "sklearn.feature_extraction.text")
T = TypeVar("T")
log = logging.getLogger(__name__)


def read_document(
    url: str,
    body: bytes,
    headers: dict[str, str],
    now: datetime,
    deadline: float = PARSE_DEADLINE,
) -> Document:
    """Parse and normalize one fetched feed document. Raises FeedError subclasses.

    A document that takes longer than ``deadline`` seconds is given up: a ParseError, so the
    feed backs off like any failing one. The caps before parsing keep honest documents far
    below it (15 MB in about 1 s); the deadline is for the slow paths no cap foresaw.
    """
    try:
        with _deadline(deadline):
            return _read(url, body, headers, now)
    except _Overtime:
        raise ParseError(url, f"gave up reading it after {deadline:g} s") from None


def _read(url: str, body: bytes, headers: dict[str, str], now: datetime) -> Document:
    parsed = parse_feed(url, body, headers)
    feed_link = parsed.link if parsed.link and parsed.link.startswith("http") else None
    entries = newest_entries(parsed.entries, MAX_ENTRIES)
    warning = parsed.warning
    if len(entries) < len(parsed.entries):
        kept = f"kept the newest {len(entries):,} of {len(parsed.entries):,} entries"
        warning = f"{kept}; {warning}" if warning else kept
    articles = tuple(
        a
        for e in entries
        if (a := normalize_entry(e, feed_url=url, feed_link=feed_link, now=now)) is not None
    )
    return Document(
        title=html_to_text(parsed.title) or None,
        link=parsed.link,
        ttl_minutes=parsed.ttl_minutes,
        warning=warning,
        entries=len(parsed.entries),
        articles=articles,
    )


class _Overtime(BaseException):
    """The deadline passed. A BaseException, so that no ``except Exception`` on the way (in
    feedparser or in our own parsing) takes it for a problem of the document's."""


RETRY = 0.05  # seconds between alarms once a deadline has passed


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _Overtime in this thread once ``seconds`` have passed, by SIGALRM.

    Only the main thread receives signals, which is where documents are read, both in a
    worker process and in a poll without workers; elsewhere there is no deadline. The signal
    interrupts Python code between two bytecodes (and the re module checks for signals); a
    single long call into other C code (nh3) ends first, which is why the caps before parsing
    bound those.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = True

    def expire(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise _Overtime

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    # Again every RETRY after the first: the alarm may land in a garbage collector's callback
    # or a __del__, where Python reports the exception and drops it.
    outer = signal.setitimer(signal.ITIMER_REAL, seconds, RETRY)
    try:
        yield
    finally:
        try:
            armed = False
        except _Overtime:  # the alarm went off as reading ended: it ended in time enough
            armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0] > 0:  # a timer of the program around us: it goes on
            left = max(outer[0] - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer[1])


def newest_entries(entries: Sequence[ParsedEntry], limit: int) -> Sequence[ParsedEntry]:
    """At most ``limit`` entries, the newest, in document order. Undated ones count as newest:
    they will be dated by when we first see them."""
    if len(entries) <= limit:
        return entries

    def age(i: int) -> tuple[bool, datetime, int]:
        published = entries[i].published
        # Among equal dates, earlier in the document counts as newer, as feeds list newest first.
        return (published is None, published or _DAWN, -i)

    order = sorted(range(len(entries)), key=age)
    return [entries[i] for i in sorted(order[-limit:])]


def default_workers(configured: int | None, feeds: int) -> int:
    """How many parser processes a poll of ``feeds`` feeds uses.

    ``configured`` is ``polling.parse_workers``: a number is taken as it is; None means one
    per core, but none for small polls.
    """
    if configured is not None:
        return configured
    if feeds < POOL_MIN_FEEDS:
        return 0
    return max(1, min(os.cpu_count() or 1, 8))


class ParserPool:
    """Parse documents in ``workers`` processes, or in this one when ``workers`` is 0."""

    def __init__(self, workers: int, *, deadline: float = PARSE_DEADLINE) -> None:
        self.workers = workers
        self.deadline = deadline  # for each document: see read_document
        self._executor: ProcessPoolExecutor | None = None
        self._used = False

    def __enter__(self) -> ParserPool:
        if self.workers > 0:
            self._executor = self._start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    @property
    def in_processes(self) -> bool:
        """Whether documents went to worker processes (so they are running, warmed up)."""
        return self._used

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # The fork server imports these once, and each worker is forked from it ready to go.
        # scikit-learn is among them so that clustering can run in a worker too: its half a
        # second of imports then happens on another core while this process fetches.
        context.set_forkserver_preload([__name__, *PRELOAD])
        return ProcessPoolExecutor(self.workers, mp_context=context)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker (it and its arguments must pickle), or here when
        there are no workers or they cannot run."""
        if self._executor is not None:
            try:
                return self._executor.submit(function, *args).result()
            except BrokenProcessPool:
                log.warning("a worker process died; running %s here", function.__name__)
        return function(*args)

    async def read(self, url: str, body: bytes, headers: dict[str, str], now: datetime) -> Document:
        """``read_document`` in a worker. A worker that dies (a crash in a C library on hostile
        bytes, the OOM killer) costs only the document it was on: the pool is restarted and
        the documents that were waiting are tried again."""
        for attempt in range(2):
            executor = self._executor
            if executor is None:  # another document found that processes cannot start
                return read_document(url, body, headers, now, self.deadline)
            try:
                future = executor.submit(read_document, url, body, headers, now, self.deadline)
            except (OSError, RuntimeError) as e:
                # Processes cannot be started here (a limit on processes, a program that
                # imports us without an ``if __name__ == "__main__"`` guard...): parse here.
                log.warning("cannot start parser processes (%s); parsing in this one", e)
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
                return read_document(url, body, headers, now, self.deadline)
            self._used = True
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                if self._executor is executor:  # the first to notice restarts it
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._start()
                if attempt == 1:
                    break
        raise ParseError(url, "the parser process died on this document")
