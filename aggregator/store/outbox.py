"""Digests: what each recipient was shown, and the outbox that keeps mail until SMTP takes it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..models import QueuedMail
from .base import StoreBase, as_dt, ts

__all__ = ["OUTBOX_KEEP", "OutboxStore"]

OUTBOX_KEEP = timedelta(days=30)  # how long sent digests stay in the outbox


class OutboxStore(StoreBase):
    """The digest_recipients, digest_stories and outbox tables."""

    def last_digest_at(self, recipient: str) -> datetime | None:
        row = self._one(
            "SELECT last_digest_at FROM digest_recipients WHERE recipient = ?", [recipient]
        )
        return as_dt(row["last_digest_at"]) if row else None

    def shown_sources(self, recipient: str, story_ids: Sequence[int]) -> dict[int, int]:
        """How many sources each story had when ``recipient`` last saw it in a digest.

        A story merged into another counts for the survivor (the most sources either showed).
        """
        wanted = list(story_ids)
        aliases = self._rows_in(
            "SELECT alias_id, story_id FROM story_aliases WHERE story_id IN ({marks})", wanted
        )
        survivor = {r["alias_id"]: r["story_id"] for r in aliases} | {i: i for i in wanted}
        rows = self._rows_in(
            """SELECT story_id, sources FROM digest_stories
               WHERE recipient = ? AND story_id IN ({marks})""",
            survivor,
            first=[recipient],
        )
        shown: dict[int, int] = {}
        for r in rows:
            story = survivor[r["story_id"]]
            shown[story] = max(shown.get(story, 0), r["sources"])
        return shown

    def record_digest(
        self,
        recipient: str,
        shown: Iterable[tuple[int, int]],
        now: datetime,
        *,
        mail: tuple[str, bytes, int] | None = None,
    ) -> int | None:
        """Remember what ``recipient`` was shown, as (story id, sources), in one transaction
        with the message that shows it: ``mail`` is (Message-ID, message, story count) and
        goes into the outbox, whose row id is returned."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO digest_recipients (recipient, last_digest_at) VALUES (?, ?)
                   ON CONFLICT (recipient)
                   DO UPDATE SET last_digest_at = excluded.last_digest_at""",
                [recipient, ts(now)],
            )
            self.db.conn.executemany(
                """INSERT OR REPLACE INTO digest_stories (recipient, story_id, sources, sent_at)
                   VALUES (?, ?, ?, ?)""",
                [(recipient, story, sources, ts(now)) for story, sources in shown],
            )
            # Sent digests are kept a month (to see what went out), then dropped.
            self.db.execute(
                "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
                [ts(now - OUTBOX_KEEP)],
            )
            if mail is None:
                return None
            message_id, message, stories = mail
            cursor = self.db.execute(
                """INSERT INTO outbox (recipient, message_id, message, stories, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                [recipient, message_id, message, stories, ts(now)],
            )
            return int(cursor.lastrowid or 0)

    def unsent_mail(self, recipients: Iterable[str]) -> list[QueuedMail]:
        """Digests in the outbox not yet accepted by SMTP, oldest first."""
        rows = self._rows_in(
            """SELECT * FROM outbox WHERE sent_at IS NULL AND recipient IN ({marks})
               ORDER BY id""",
            recipients,
        )
        return [
            QueuedMail(
                id=r["id"],
                recipient=r["recipient"],
                message_id=r["message_id"],
                message=bytes(r["message"]),
                stories=r["stories"],
                created_at=as_dt(r["created_at"]),
                attempts=r["attempts"],
                last_error=r["last_error"],
            )
            for r in sorted(rows, key=lambda r: r["id"])
        ]

    def mail_attempted(self, mail_id: int, now: datetime, *, error: str | None = None) -> None:
        """Record a send: sent when ``error`` is None, else kept for the next run to retry."""
        with self.transaction():
            self.db.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_attempt_at = :now,
                     last_error = :error,
                     sent_at = CASE WHEN :error IS NULL THEN :now ELSE NULL END
                   WHERE id = :id""",
                {"id": mail_id, "now": ts(now), "error": error},
            )
