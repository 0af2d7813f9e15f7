from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import next_after_error, next_after_success

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
