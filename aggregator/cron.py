"""`run`, the command for cron: poll, deliver the digest when one is due, and say what is wrong.

Polling happens on every run (every 30 minutes, say), because busy feeds roll over within
hours and a story's growth is only seen when it is polled. A digest goes out only when one is
due: at each ``digest.at`` time (see aggregator.digest), or on every run without it. Whatever
the schedule, a digest waiting in the outbox is sent first thing.

What was handled is kept in the database (``meta``): the last digest time a run dealt with
(marked in the transaction that puts its digest in the outbox, so a crash after that, even
after the send, makes no second digest for that time), and when the last alert about a
long-failing feed was given, so that alert comes once a day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from .config import Config, digest_times, digest_zone
from .delivery import mail_digests, print_digest
from .digest import latest_slot, next_slot
from .errors import DeliveryError
from .models import Delivery, Digest, FeedOutcome, PollReport, RunReport
from .pipeline import HttpSession, poll
from .render import plural, span
from .schedule import due
from .store import Store

__all__ = ["ALERT_EVERY", "cron_run", "feeds_alert"]

DIGEST_DONE = "digest_slot"  # meta: the last digest time a run handled (ISO 8601, UTC)
ALERT_SAID = "feeds_alert_at"  # meta: when a long-failing feed was last reported
ALERT_EVERY = timedelta(days=1)
MAX_NAMED = 3  # failing feeds named in the alert's one line


def cron_run(
    config: Config,
    store: Store,
    *,
    write: Callable[[Digest], None],
    now: datetime | None = None,
    all_feeds: bool = False,
    report: Callable[[Delivery], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[FeedOutcome], None] | None = None,
    http: HttpSession | None = None,
) -> RunReport:
    """Poll the feeds that are due, then deliver the digest if one is due.

    A printed digest (no ``email:`` section) goes to ``write``, and only when it has stories.
    Each mailed delivery is handed to ``report`` as it is made; a digest that could not be
    mailed raises DeliveryError at the end, as ``mail_digests`` does.
    """
    now = now or datetime.now(UTC)
    polled = poll(
        config, store, all_feeds=all_feeds, now=now, progress=progress, on_start=on_start, http=http
    )
    times = digest_times(config.digest)
    zone = digest_zone(config.digest) if times else UTC
    slot = latest_slot(now, times, zone)
    done_text = store.get_meta(DIGEST_DONE)
    done = datetime.fromisoformat(done_text) if done_text else None
    # Without digest.at every run is a digest run. With it, the first run starts the schedule:
    # the time before it was set up is not owed.
    owed = not times or (slot is not None and done is not None and slot > done)
    deliveries: list[Delivery] = []

    def heard(delivery: Delivery) -> None:
        deliveries.append(delivery)
        if report is not None:
            report(delivery)

    def recorded() -> None:  # in the transaction that records the digest
        _handled(store, slot, done)

    try:
        if config.email is None:
            if owed:
                heard(
                    print_digest(config, store, write, show_empty=False, now=now, recorded=recorded)
                )
        else:
            mail_digests(config, store, now=now, report=heard, new=owed, recorded=recorded)
    except DeliveryError:
        _handled(store, slot, done)  # the digest is in the outbox: the next run sends it
        raise
    _handled(store, slot, done)
    feeds = [f for f in store.feeds() if not f.gone]
    waiting = [f.next_due for f in feeds if f.next_due is not None and f.next_due > now]
    return RunReport(
        poll=polled,
        feeds=len(feeds),
        next_feed=min(waiting, default=None) if not due(feeds, now) else now,
        digest_due=owed,
        next_digest=next_slot(now, times, zone),
        deliveries=tuple(deliveries),
        alert=_alert(config, store, polled, now),
    )


def _handled(store: Store, slot: datetime | None, done: datetime | None) -> None:
    if slot is not None and (done is None or slot > done):
        store.set_meta(DIGEST_DONE, slot.isoformat())


def _alert(config: Config, store: Store, polled: PollReport, now: datetime) -> str | None:
    after = config.polling.alert_after
    said_text = store.get_meta(ALERT_SAID)
    said = datetime.fromisoformat(said_text) if said_text else None
    stale = store.failing_feeds(since=now - after)
    line, stale_said = feeds_alert(polled, stale, after, now, said)
    if stale_said:
        store.set_meta(ALERT_SAID, now.isoformat())
    return line


def feeds_alert(
    polled: PollReport,
    stale: Sequence[tuple[str, str]],
    after: timedelta,
    now: datetime,
    said: datetime | None,
) -> tuple[str | None, bool]:
    """The one line a run says about failing feeds, if any, and whether it is the once-a-day
    one about feeds failing for longer than ``after`` (to remember when it was said).

    Every feed polled failing is said on each run: it is likely the network, and cron should
    hear of it while it lasts. Feeds failing for long are said once a day, not every run.
    """
    failed = polled.failed
    if polled.outcomes and len(failed) == len(polled.outcomes):
        first = failed[0]
        return (
            f"all {plural(len(failed), 'feed')} polled failed (is the network down?); "
            f"{first.url}: {first.message}",
            False,
        )
    if not stale or (said is not None and now - said < ALERT_EVERY):
        return None, False
    named = "; ".join(f"{name}: {error}" for name, error in stale[:MAX_NAMED])
    more = f"; and {len(stale) - MAX_NAMED} more" if len(stale) > MAX_NAMED else ""
    return (
        f"{plural(len(stale), 'feed')} failing for over {span(after)} "
        f"(`aggregator feeds list` says more): {named}{more}",
        True,
    )
