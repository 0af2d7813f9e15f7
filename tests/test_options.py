"""What the CLI and the reader both take from a user: time windows and search words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.errors import AggregatorError, UsageError
from aggregator.options import ALL_TIME, check_query, cutoff

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def test_cutoff_is_the_start_of_the_window_and_none_without_a_limit() -> None:
    assert cutoff(NOW, timedelta(hours=6)) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert cutoff(NOW, None) is None
    assert cutoff(NOW, ALL_TIME) is None  # NOW - ALL_TIME would overflow


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_a_search_without_a_word_is_a_usage_error(query: str) -> None:
    with pytest.raises(UsageError) as raised:
        check_query(query)
    assert str(raised.value) == "search needs at least one word"
    assert isinstance(raised.value, AggregatorError) and raised.value.exit_code == 2


def test_a_query_with_a_word_is_taken_as_given() -> None:
    assert check_query(' AND "( ') == ' AND "( '
