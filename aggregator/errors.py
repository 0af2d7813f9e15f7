"""The one exception tree of aggregator.

    AggregatorError            anything a user can act on; the CLI prints its message, no traceback
    ├── ConfigError            config.yaml or a flag is wrong (names the key path)
    ├── UsageError             a command was given what it cannot take: an empty search (exit 2)
    ├── StorageError           the database cannot be opened, migrated or written
    ├── FeedError              one feed failed; carries the feed URL
    │   ├── FetchError         network, HTTP status, deadline, size cap, redirects
    │   │   ├── GoneError      410: the feed is gone for good
    │   │   └── RetryLaterError 429/503: come back later (maybe at a time the server named)
    │   ├── NotAFeedError      the body is HTML or otherwise not RSS/Atom/JSON Feed
    │   └── ParseError         the feed could not be parsed at all
    ├── NotFoundError          a story, article or feed id that does not exist
    ├── CorrectionError        a story merge, split or move that cannot be done as asked
    ├── EvalError              the labelled CSV for `aggregator eval` is unusable
    ├── OpmlError              a subscription list for `feeds import` is not OPML, or is unsafe
    ├── DeliveryError          a digest could not be mailed; it stays in the outbox (exit 4)
    ├── FeedsFailingError      `run`: every due feed failed, or one has failed too long (exit 5)
    └── LockedError            another run holds the run lock: not a failure (exit 0)

Low-level errors are wrapped once, at the edge, with ``raise ... from``. Bugs are not
wrapped and keep their tracebacks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = [
    "AggregatorError",
    "ConfigError",
    "CorrectionError",
    "DeliveryError",
    "EvalError",
    "FeedError",
    "FeedsFailingError",
    "FetchError",
    "GoneError",
    "LockedError",
    "NotAFeedError",
    "NotFoundError",
    "OpmlError",
    "ParseError",
    "RetryLaterError",
    "StorageError",
    "UsageError",
]


class AggregatorError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


class ConfigError(AggregatorError):
    """The configuration is invalid; the message names the key path."""

    exit_code = 2


class UsageError(AggregatorError):
    """A command was given something it cannot take, such as a search with no word in it."""

    exit_code = 2


class StorageError(AggregatorError):
    """The database cannot be opened, migrated or written."""

    exit_code = 3


MAX_MESSAGE = 500


class FeedError(AggregatorError):
    """One feed failed. Never aborts a poll: it becomes that feed's outcome."""

    def __init__(self, url: str, message: str) -> None:
        # One line, and short: a hostile server's words end up in `feeds list` and digests.
        message = " ".join(message.split())
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Parsing runs in worker processes, whose errors come back pickled. The default
        # pickling would call __init__ with the one formatted message; rebuild from the fields.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(cls: type[FeedError], args: tuple[Any, ...], fields: dict[str, Any]) -> FeedError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


class FetchError(FeedError):
    """The feed could not be fetched (network, status, deadline, size cap, redirects)."""

    def __init__(self, url: str, message: str, *, status: int | None = None) -> None:
        super().__init__(url, message)
        self.status = status


class GoneError(FetchError):
    """410 Gone: the feed is not coming back."""


class RetryLaterError(FetchError):
    """429 or 503: the server asked us to come back later (``retry_after`` when it said when)."""

    def __init__(
        self, url: str, message: str, *, status: int, retry_after: datetime | None
    ) -> None:
        super().__init__(url, message, status=status)
        self.retry_after = retry_after


class NotAFeedError(FeedError):
    """The response is not a feed (an HTML page, a login wall, an image...)."""


class ParseError(FeedError):
    """The body looked like a feed but could not be parsed."""


class NotFoundError(AggregatorError):
    """A story, article or feed that does not exist."""


class CorrectionError(AggregatorError):
    """A story merge, split or move that cannot be done as asked."""


class EvalError(AggregatorError):
    """The labelled data given to `aggregator eval` is unusable."""


class OpmlError(AggregatorError):
    """A subscription list is not OPML, is not well-formed, or declares entities (refused)."""


class DeliveryError(AggregatorError):
    """Mail could not be handed to the SMTP server. The digest stays in the outbox and the next
    run sends it again."""

    exit_code = 4


class FeedsFailingError(AggregatorError):
    """What `run` found wrong with the feeds, for cron to mail: every feed it polled failed
    (the network is likely down), or a feed has failed for longer than ``polling.alert_after``.
    Raised once the run is done: what it polled is stored and its digest delivered."""

    exit_code = 5


class LockedError(AggregatorError):
    """Another run holds the run lock. Overlapping cron runs are expected, so this exits 0."""

    exit_code = 0
    stuck = False  # the other run has held it for over an hour: said even under --quiet
