"""Digests, printed or mailed: the orchestration (storage, rendering, SMTP).

Each recipient (an address, or ``print`` for printed digests) has their own state: the
stories they were shown, with how many sources each had. A mailed digest goes into the outbox
in the same transaction that records what it shows, and is marked sent once the SMTP server
accepts it. So:

- a failed send stays in the outbox, and the next run sends it before anything else, even
  when nothing is new; until it goes through, no newer digest piles up behind it;
- a crash after the outbox write and before the send loses nothing: the next run sends it;
- a crash after the send and before the mark sends it once more, byte for byte the same
  message (same Message-ID), which mail clients show once.

A digest that could not be sent is an error (DeliveryError, exit 4) once every recipient has
had their turn: one refusing address does not keep the others' digests back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from .config import Config, EmailConfig, mail_address
from .digest import PRINTED, choose_entries, digest_window, split_entries, subject_line
from .errors import ConfigError, DeliveryError
from .listing import ranked_stories, stories_for_links
from .models import Delivery, DeliveryOutcome, Digest, DigestEntry
from .options import ALL_TIME, cutoff
from .render import plural
from .store import Store

# ALL_TIME (aggregator.options's) is what build_digest's ``since`` takes for every story.
__all__ = ["ALL_TIME", "build_digest", "mail_digests", "print_digest"]


def build_digest(
    store: Store,
    config: Config,
    *,
    recipient: str = PRINTED,
    since: timedelta | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> Digest:
    """The stories ``recipient`` has not seen, or that have grown since they saw them: the best
    ``digest.limit`` in full, the others in the digest's compact list. An explicit ``limit``
    (`digest --limit`) is how many there are at most, all in full.

    ``since`` None: from the recipient's last digest (and at least ``digest.since`` back).
    Otherwise every story active in the last ``since`` (``ALL_TIME``: ever), shown or not.
    """
    now = now or datetime.now(UTC)
    settings, recent = config.digest, config.clustering.quiet_after
    if since is None:
        start = digest_window(now, store.last_digest_at(recipient), settings.since)
    else:
        start = cutoff(now, since)
    candidates = ranked_stories(
        store,
        since=start,
        min_size=settings.min_size,
        limit=0,
        now=now,
        recent=recent,
        with_articles=False,
    )
    chosen = choose_entries(
        candidates,
        store.shown_sources(recipient, [story.id for story in candidates]),
        limit=limit or 0,  # an explicit --limit caps the digest; digest.limit splits it
        everything=since is not None,
    )
    full, more = split_entries(
        [
            DigestEntry(story, e.earlier_sources)
            for story, e in zip(
                stories_for_links(store, [e.story.id for e in chosen], now=now, recent=recent),
                chosen,
                strict=True,
            )
        ],
        settings.limit if limit is None else limit,
    )
    return Digest(
        generated_at=now,
        since=start,
        entries=full,
        more=more,
        failing_feeds=tuple(store.failing_feeds(since=now - timedelta(days=1))),
        recipient=recipient,
    )


def _shown(digest: Digest) -> list[tuple[int, int]]:
    return [(entry.story.id, len(entry.story.sources)) for entry in digest.shown]


def print_digest(
    config: Config,
    store: Store,
    write: Callable[[Digest], None],
    *,
    since: timedelta | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    show_empty: bool = True,
    now: datetime | None = None,
    recorded: Callable[[], None] | None = None,
) -> Delivery:
    """Build the printed digest, hand it to ``write``, then remember what it showed.

    Recorded after writing: a crash in between prints it once more rather than never. An
    empty digest goes to ``write`` only with ``show_empty``. ``recorded``: as for
    ``mail_digests``.
    """
    now = now or datetime.now(UTC)
    digest = build_digest(store, config, since=since, limit=limit, now=now)
    if digest.shown or show_empty:
        write(digest)
    if digest.shown and not dry_run:
        with store.transaction():
            store.record_digest(PRINTED, _shown(digest), now)
            if recorded is not None:
                recorded()
    if dry_run:
        outcome = DeliveryOutcome.PREVIEW
    elif digest.shown:
        outcome = DeliveryOutcome.PRINTED
    else:
        outcome = DeliveryOutcome.NOTHING_NEW
    return Delivery(PRINTED, outcome, stories=len(digest.shown), digest=digest)


def mail_digests(
    config: Config,
    store: Store,
    *,
    to: Sequence[str] = (),
    since: timedelta | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    report: Callable[[Delivery], None] | None = None,
    new: bool = True,
    recorded: Callable[[], None] | None = None,
) -> list[Delivery]:
    """Send each recipient (``to``, else ``email.to``) their digest, the outbox first.

    Without ``new`` (no digest is due), only what waits in the outbox is sent. ``recorded``
    writes to the store in the transaction that puts a digest in the outbox (`run` marks its
    digest time handled there, so a crash after it cannot make a second digest for that time).

    Each delivery is handed to ``report`` as it is made. When a digest could not be sent
    (it stays in the outbox), raises DeliveryError after the last recipient, naming each.
    """
    from .mail import SmtpSender, compose, read_password

    email = _email(config, to)
    now = now or datetime.now(UTC)
    # (as written, for To:; the bare address, whose case-folded form keys the state)
    recipients = [(written, mail_address(written, "--to")) for written in (to or email.to)]
    deliveries: list[Delivery] = []

    def done(delivery: Delivery) -> None:
        deliveries.append(delivery)
        if report is not None:
            report(delivery)

    if dry_run:
        for written, bare in recipients:
            done(_preview(config, store, email, written, bare, since, limit, now))
        return deliveries
    with SmtpSender(email, read_password(email)) as sender:

        def attempt(mail_id: int, message: bytes, bare: str) -> str | None:
            try:
                sender.send(message, bare)
            except DeliveryError as e:
                store.mail_attempted(mail_id, datetime.now(UTC), error=str(e))
                return str(e)
            store.mail_attempted(mail_id, datetime.now(UTC))
            return None

        for written, bare in recipients:
            key = bare.lower()
            error = None
            for queued in store.unsent_mail([key]):
                error = attempt(queued.id, queued.message, bare)
                outcome = DeliveryOutcome.FAILED if error else DeliveryOutcome.RESENT
                done(Delivery(bare, outcome, queued.stories, queued.message_id, error=error))
                if error:
                    break  # keep the order: nothing newer goes before it
            if error or not new:
                continue
            digest = build_digest(store, config, recipient=key, since=since, limit=limit, now=now)
            if not digest.shown:
                done(Delivery(bare, DeliveryOutcome.NOTHING_NEW))
                continue
            message = compose(digest, email, written, links=config.digest.links)
            message_id, data = str(message["Message-ID"]), message.as_bytes()
            with store.transaction():
                mail_id = store.record_digest(
                    key, _shown(digest), now, mail=(message_id, data, len(digest.shown))
                )
                if recorded is not None:
                    recorded()
            assert mail_id is not None
            error = attempt(mail_id, data, bare)
            done(
                Delivery(
                    bare,
                    DeliveryOutcome.FAILED if error else DeliveryOutcome.SENT,
                    len(digest.shown),
                    message_id,
                    subject=str(message["Subject"]),
                    error=error,
                )
            )
    failed = [d for d in deliveries if d.outcome == DeliveryOutcome.FAILED]
    if failed:
        reasons = "; ".join(f"{d.recipient}: {d.error}" for d in failed)
        raise DeliveryError(
            f"{plural(len(failed), 'digest')} not sent, kept in the outbox for the next run. "
            + reasons
        )
    return deliveries


def _email(config: Config, to: Sequence[str]) -> EmailConfig:
    if config.email is None:
        hint = "digest --to" if to else "mailing a digest"
        raise ConfigError(
            f"{hint} needs an email: section in the config (smtp_host, from, to...): the "
            "config `aggregator init` writes has one to fill in, commented out"
        )
    return config.email


def _preview(
    config: Config,
    store: Store,
    email: EmailConfig,
    written: str,
    bare: str,
    since: timedelta | None,
    limit: int | None,
    now: datetime,
) -> Delivery:
    """What a run would mail ``bare`` now, and what waits in the outbox; changes nothing."""
    digest = build_digest(store, config, recipient=bare.lower(), since=since, limit=limit, now=now)
    waiting = store.unsent_mail([bare.lower()])
    error = None
    if waiting:
        error = f"{len(waiting)} digest(s) wait in the outbox; last error: {waiting[-1].last_error}"
    return Delivery(
        written,
        DeliveryOutcome.PREVIEW,
        len(digest.shown),
        subject=subject_line(email.subject, digest),
        error=error,
        digest=digest,
    )
