"""aggregator/store/outbox.py on a real database file: digests shown, and mail until it is sent."""

from __future__ import annotations

from pathlib import Path

from aggregator.store import OUTBOX_KEEP

from .stored import HOUR, NOW, article, cluster, feed_id, new_store, save

A = "https://a.example/feed"
ANN, BOB = "ann@example.com", "bob@example.com"


def test_a_digest_remembers_when_and_what_each_recipient_was_shown(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    assert store.last_digest_at(ANN) is None
    assert store.record_digest(ANN, [(1, 3), (2, 1)], NOW) is None  # printed: no mail
    store.record_digest(ANN, [(2, 4)], NOW + HOUR)
    assert store.last_digest_at(ANN) == NOW + HOUR
    assert store.last_digest_at(BOB) is None
    assert store.shown_sources(ANN, [1, 2, 3]) == {1: 3, 2: 4}
    assert store.shown_sources(BOB, [1, 2]) == {}


def test_what_was_shown_of_a_merged_story_counts_for_the_survivor(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    ids = save(store, feed_id(store, A), [article("One"), article("Two")])
    first, second = cluster(store, [ids[0]], [ids[1]])
    store.record_digest(ANN, [(first, 2), (second, 5)], NOW)
    store.merge_stories(first, [second])
    assert store.shown_sources(ANN, [first]) == {first: 5}  # the most either showed


def test_unsent_mail_comes_oldest_first_for_the_recipients_asked(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    one = store.record_digest(ANN, [], NOW, mail=("<1@x>", b"first", 2))
    two = store.record_digest(BOB, [], NOW, mail=("<2@x>", b"second", 1))
    three = store.record_digest(ANN, [], NOW + HOUR, mail=("<3@x>", b"third", 4))
    assert [m.id for m in store.unsent_mail([ANN, BOB])] == [one, two, three]
    (mail, later) = store.unsent_mail([ANN])
    assert (mail.id, mail.message_id, mail.message, mail.stories, mail.created_at) == (
        one,
        "<1@x>",
        b"first",
        2,
        NOW,
    )
    assert later.id == three


def test_a_failed_send_stays_queued_with_its_error_and_a_sent_one_leaves(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    mail_id = store.record_digest(ANN, [], NOW, mail=("<1@x>", b"m", 1))
    assert mail_id is not None
    store.mail_attempted(mail_id, NOW, error="421 try later")
    (queued,) = store.unsent_mail([ANN])
    assert (queued.attempts, queued.last_error) == (1, "421 try later")
    store.mail_attempted(mail_id, NOW + HOUR)
    assert store.unsent_mail([ANN]) == []


def test_sent_mail_is_dropped_once_older_than_the_outbox_keeps_it(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    old = store.record_digest(ANN, [], NOW, mail=("<1@x>", b"m", 1))
    unsent = store.record_digest(ANN, [], NOW, mail=("<2@x>", b"m", 1))
    assert old is not None and unsent is not None
    store.mail_attempted(old, NOW)

    def outbox() -> list[int]:
        return [r[0] for r in store.db.execute("SELECT id FROM outbox ORDER BY id")]

    store.record_digest(BOB, [], NOW + OUTBOX_KEEP)  # not older yet: kept
    assert outbox() == [old, unsent]
    store.record_digest(BOB, [], NOW + OUTBOX_KEEP + HOUR)
    assert outbox() == [unsent]  # never an unsent one
