from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.dedupe import duplicate_feeds
from aggregator.models import FeedState, FeedStatus
from aggregator.schedule import (
    feed_health,
    freshness,
    next_after_error,
    next_after_success,
    publishing_gap,
)

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SEEDS = range(50)


def success_delay(interval: timedelta, seed: int, ttl: int | None = None) -> timedelta:
    return next_after_success(NOW, interval, ttl_minutes=ttl, rng=random.Random(seed)) - NOW


def error_delay(
    interval: timedelta, errors: int, seed: int, retry_after: datetime | None = None
) -> timedelta:
    due = next_after_error(NOW, interval, errors, retry_after=retry_after, rng=random.Random(seed))
    return due - NOW


# --- after a success ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [10 * MINUTE, HOUR, 6 * HOUR])
def test_success_within_interval_plus_minus_ten_percent(interval: timedelta) -> None:
    delays = [success_delay(interval, seed) for seed in SEEDS]
    assert all(interval * 0.9 <= d <= interval * 1.1 for d in delays)
    # jitter spreads feeds out: not all the same, and on both sides of the interval
    assert len(set(delays)) > 1
    assert min(delays) < interval < max(delays)


def test_success_is_deterministic_for_a_seed() -> None:
    assert success_delay(HOUR, 7) == success_delay(HOUR, 7)


def test_success_honours_longer_ttl() -> None:
    for seed in SEEDS:
        assert 3 * HOUR * 0.9 <= success_delay(HOUR, seed, ttl=180) <= 3 * HOUR * 1.1


def test_success_ignores_shorter_ttl() -> None:
    for seed in SEEDS:
        assert success_delay(HOUR, seed, ttl=5) == success_delay(HOUR, seed)


@pytest.mark.parametrize("ttl", [None, 0])
def test_success_without_ttl_uses_interval(ttl: int | None) -> None:
    assert success_delay(2 * HOUR, 3, ttl=ttl) == success_delay(2 * HOUR, 3)


@pytest.mark.parametrize(
    ("interval", "ttl"),
    [(MINUTE, None), (timedelta(seconds=10), None), (MINUTE, 2)],
)
def test_success_never_sooner_than_five_minutes(interval: timedelta, ttl: int | None) -> None:
    for seed in SEEDS:
        delay = success_delay(interval, seed, ttl=ttl)
        assert 5 * MINUTE <= delay <= 5 * MINUTE * 1.1


@pytest.mark.parametrize(
    ("interval", "ttl"),
    [(48 * HOUR, None), (HOUR, 60 * 24 * 30), (24 * HOUR, None)],
)
def test_success_never_later_than_a_day(interval: timedelta, ttl: int | None) -> None:
    for seed in SEEDS:
        delay = success_delay(interval, seed, ttl=ttl)
        assert 24 * HOUR * 0.9 <= delay <= 24 * HOUR


# --- after an error ----------------------------------------------------------------------------


def test_first_error_waits_about_one_interval() -> None:
    for seed in SEEDS:
        assert HOUR <= error_delay(HOUR, 1, seed) <= HOUR * 1.1


def test_error_backoff_doubles_per_consecutive_error() -> None:
    interval = 10 * MINUTE
    for seed in SEEDS:
        delays = [error_delay(interval, n, seed) for n in (1, 2, 3, 4, 5)]
        # same seed, same jitter: each step is exactly twice the one before
        for before, after in itertools.pairwise(delays):
            assert after.total_seconds() == pytest.approx(2 * before.total_seconds())
        assert interval * 16 <= delays[4] <= interval * 16 * 1.1


def test_error_backoff_bounded_at_a_day() -> None:
    for errors in (6, 10, 11, 50, 1000):
        for seed in SEEDS:
            delay = error_delay(HOUR, errors, seed)
            assert 24 * HOUR * 0.9 <= delay <= 24 * HOUR


def test_error_backoff_never_below_five_minutes() -> None:
    for seed in SEEDS:
        assert error_delay(timedelta(seconds=30), 1, seed) >= 5 * MINUTE


def test_error_count_zero_treated_as_first() -> None:
    assert error_delay(HOUR, 0, 1) == error_delay(HOUR, 1, 1)


def test_retry_after_later_than_backoff_wins() -> None:
    later = NOW + 5 * HOUR
    assert next_after_error(NOW, HOUR, 1, retry_after=later, rng=random.Random(1)) == later


def test_retry_after_sooner_than_backoff_loses() -> None:
    sooner = NOW + 10 * MINUTE
    with_retry = error_delay(HOUR, 2, 4, retry_after=sooner)
    assert with_retry == error_delay(HOUR, 2, 4)
    assert with_retry >= 2 * HOUR


def test_retry_after_in_the_past_is_ignored() -> None:
    assert error_delay(HOUR, 1, 5, retry_after=NOW - HOUR) == error_delay(HOUR, 1, 5)


def test_retry_after_may_exceed_a_day() -> None:
    later = NOW + timedelta(days=3)
    assert next_after_error(NOW, HOUR, 1, retry_after=later, rng=random.Random(1)) == later


@pytest.mark.parametrize("days", [8, 30, 3650])
def test_retry_after_capped_at_seven_days(days: int) -> None:
    far = NOW + timedelta(days=days)
    due = next_after_error(NOW, HOUR, 1, retry_after=far, rng=random.Random(1))
    assert due == NOW + timedelta(days=7)


def test_error_is_deterministic_for_a_seed() -> None:
    assert error_delay(HOUR, 3, 11) == error_delay(HOUR, 3, 11)
    assert len({error_delay(HOUR, 3, seed) for seed in SEEDS}) > 1


def test_the_server_s_freshness_is_a_floor_the_jitter_never_goes_under() -> None:
    for seed in SEEDS:
        due = next_after_success(NOW, HOUR, fresh_for=2 * HOUR, rng=random.Random(seed)) - NOW
        assert 2 * HOUR <= due <= 2 * HOUR * 1.1
        due = next_after_success(NOW, HOUR, gap=HOUR, ttl_minutes=45, rng=random.Random(seed))
        assert 45 * MINUTE <= due - NOW <= 45 * MINUTE * 1.1
    # a floor only a little under the pace still spreads feeds out above it
    dues = {
        next_after_success(NOW, HOUR, fresh_for=58 * MINUTE, rng=random.Random(s)) for s in SEEDS
    }
    assert len(dues) > 1 and min(dues) == NOW + 58 * MINUTE


# --- publishing_gap ----------------------------------------------------------------------------


def test_no_dates_no_gap() -> None:
    assert publishing_gap([], NOW) is None


def test_items_all_older_than_a_week_make_a_dormant_feed() -> None:
    old = [NOW - timedelta(days=d) for d in (8, 9, 30)]
    assert publishing_gap(old, NOW) == timedelta(days=7)


def test_ten_items_over_seventeen_hours_are_about_every_1_7_hours() -> None:
    dates = [NOW - 17 * HOUR * i / 9 for i in range(10)]  # newest now, oldest 17 h ago
    gap = publishing_gap(dates, NOW)
    assert gap is not None and gap.total_seconds() == pytest.approx(1.7 * 3600)


def test_only_the_last_week_counts_towards_the_gap() -> None:
    dates = [NOW - HOUR, NOW - 2 * HOUR, NOW - timedelta(days=20)]
    assert publishing_gap(dates, NOW) == HOUR


def test_future_dates_count_as_now() -> None:
    assert publishing_gap([NOW + 5 * HOUR, NOW - 2 * HOUR], NOW) == HOUR
    assert publishing_gap([NOW + timedelta(days=400)], NOW) == 5 * MINUTE


# --- freshness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "max-age=7200"}, 2 * HOUR),
        ({"cache-control": 'public, max-age="600"'}, 10 * MINUTE),
        ({"cache-control": "max-age=60, s-maxage=3600"}, HOUR),  # the shared cache's word
        ({"cache-control": "max-age=0"}, timedelta(0)),
        ({"cache-control": "no-cache, max-age=7200"}, None),
        ({"cache-control": "max-age=7200, no-store"}, None),
        ({"cache-control": "private"}, None),
        ({}, None),
        # max-age wins over Expires
        ({"cache-control": "max-age=60", "expires": "Tue, 03 Jun 2025 18:00:00 GMT"}, MINUTE),
    ],
)
def test_freshness_from_cache_control(headers: dict[str, str], expected: timedelta | None) -> None:
    assert freshness(headers, NOW) == expected


def test_expires_counts_from_the_server_s_date_not_our_clock() -> None:
    headers = {"date": "Tue, 03 Jun 2025 08:00:00 GMT", "expires": "Tue, 03 Jun 2025 10:00:00 GMT"}
    assert freshness(headers, NOW) == 2 * HOUR  # our clock (12:00) says it expired already
    assert freshness({"expires": "Tue, 03 Jun 2025 14:00:00 GMT"}, NOW) == 2 * HOUR
    assert freshness({"expires": "Tue, 03 Jun 2025 11:00:00 GMT"}, NOW) is None  # stale


@pytest.mark.parametrize("expires", ["0", "-1", "soon", "Tue, 99 Jun 2025 10:00:00 GMT"])
def test_unreadable_expires_says_nothing(expires: str) -> None:
    assert freshness({"expires": expires}, NOW) is None


def test_freshness_is_capped_at_a_week() -> None:
    assert freshness({"cache-control": f"max-age={10**12}"}, NOW) == timedelta(days=7)
    far = {"expires": "Fri, 03 Jun 2033 12:00:00 GMT"}
    assert freshness(far, NOW) == timedelta(days=7)


# --- feed_health -------------------------------------------------------------------------------


def health(
    status: str = "ok",
    *,
    errors: int = 0,
    gone: bool = False,
    retry_after: datetime | None = None,
    duplicate_of: str | None = None,
) -> str:
    return feed_health(
        status=status,
        error_count=errors,
        gone=gone,
        retry_after=retry_after,
        duplicate_of=duplicate_of,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"status": "new"}, "new"),
        ({"status": "ok"}, "ok"),
        ({"status": "not modified"}, "not modified"),
        ({"status": "error", "errors": 1}, "error"),
        ({"status": "error", "errors": 0}, "error"),  # failed while the network was down
        ({"status": "not a feed", "errors": 1}, "error"),
        ({"status": "error", "errors": 2}, "backing off"),
        ({"status": "error", "errors": 7}, "backing off"),
        ({"status": "error", "errors": 1, "retry_after": NOW + HOUR}, "rate-limited"),
        ({"status": "error", "errors": 3, "retry_after": NOW + HOUR}, "rate-limited"),
        ({"status": "error", "errors": 1, "retry_after": NOW}, "error"),  # the time has come
        ({"status": "gone", "errors": 1, "gone": True}, "gone"),
        ({"status": "ok", "duplicate_of": "https://b.example/feed"}, "duplicate"),
        # a gone feed is gone, whatever else is true of it
        ({"status": "gone", "gone": True, "duplicate_of": "https://b.example/feed"}, "gone"),
        ({"status": "error", "errors": 2, "duplicate_of": "https://b.example/f"}, "duplicate"),
    ],
)
def test_feed_health_names_every_state(state: dict[str, Any], expected: str) -> None:
    assert health(**state) == expected


# --- duplicate_feeds ---------------------------------------------------------------------------


def feed(feed_id: int, url: str, moved_to: str | None = None) -> FeedState:
    return FeedState(
        id=feed_id,
        url=url,
        title=None,
        tags=(),
        effective_url=moved_to,
        etag=None,
        last_modified=None,
        body_hash=None,
        status=FeedStatus.OK,
        next_due=None,
        error_count=0,
        last_error=None,
        last_success=None,
        gone=False,
    )


A, B, C = "https://a.example/rss", "https://b.example/rss", "https://c.example/rss"


def test_no_moves_no_duplicates() -> None:
    assert duplicate_feeds([feed(1, A), feed(2, B, moved_to=C)]) == {}


def test_a_feed_moved_onto_another_feed_s_url_is_its_duplicate() -> None:
    assert duplicate_feeds([feed(1, A, moved_to=B), feed(2, B)]) == {1: B}
    assert duplicate_feeds([feed(1, B), feed(2, A, moved_to=B)]) == {2: B}


def test_two_feeds_moved_to_one_url_the_later_added_is_the_duplicate() -> None:
    assert duplicate_feeds([feed(2, B, moved_to=C), feed(1, A, moved_to=C)]) == {2: A}


def test_two_feeds_pointing_at_each_other_the_first_one_stays() -> None:
    assert duplicate_feeds([feed(1, A, moved_to=B), feed(2, B, moved_to=A)]) == {2: A}
    assert duplicate_feeds([feed(2, B, moved_to=A), feed(1, A, moved_to=B)]) == {2: A}


def test_a_feed_redirected_to_itself_is_no_duplicate() -> None:
    assert duplicate_feeds([feed(1, A, moved_to=A), feed(2, B)]) == {}


def test_feeds_moving_in_a_ring_keep_one_of_them_fetched() -> None:
    ring = [feed(1, A, moved_to=B), feed(2, B, moved_to=C), feed(3, C, moved_to=A)]
    duplicates = duplicate_feeds(ring)
    assert sorted(duplicates) == [1, 3]  # B alone is fetched; A and C lead to it
    by_url = {f.url: f.id for f in ring}
    for start in duplicates:
        seen, current = set(), start
        while current in duplicates and current not in seen:
            seen.add(current)
            current = by_url[duplicates[current]]
        assert current == 2
