"""The fetch stage against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import DEFAULT_USER_AGENT
from aggregator.errors import FetchError, GoneError, RetryLaterError
from aggregator.fetch import FetchLimits, fetch, make_session, parse_retry_after
from aggregator.models import FetchResult

from .conftest import FeedServer, rss


def get(url: str, **kwargs: object) -> FetchResult:
    async def go() -> FetchResult:
        async with make_session(user_agent=DEFAULT_USER_AGENT, concurrency=4) as c:
            return await fetch(c, url, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


BODY = rss("Outlet", [{"guid": "1", "title": "Hello", "link": "https://outlet.example/1"}])


def test_fetches_body_and_validators_and_names_the_project(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/feed", body=BODY, etag='"v1"', last_modified="Mon, 23 Nov 2026 10:00:00 GMT"
    )
    result = get(url)
    assert result.status == 200
    assert result.body == BODY
    assert result.etag == '"v1"'
    assert result.last_modified == "Mon, 23 Nov 2026 10:00:00 GMT"
    agent = feed_server.hits("/feed")[0].headers["user-agent"]
    assert agent.startswith("aggregator/") and "https://" in agent


def test_conditional_get_sends_validators_back_and_gets_304(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/feed", body=BODY, etag='"v1"', last_modified="Mon, 23 Nov 2026 10:00:00 GMT"
    )
    result = get(url, etag='"v1"', last_modified="Mon, 23 Nov 2026 10:00:00 GMT")
    assert result.not_modified and result.body is None
    sent = feed_server.hits("/feed")[0].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 23 Nov 2026 10:00:00 GMT"


def test_gzip_is_decoded(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed", body=BODY, gzip=True)
    assert get(url).body == BODY
    assert "gzip" in feed_server.hits("/feed")[0].headers["accept-encoding"]


def test_decoded_size_cap_stops_a_gzip_bomb(feed_server: FeedServer) -> None:
    bomb = b"<rss>" + b" " * (20 * 1024 * 1024)  # 20 MiB that gzips to about 20 KiB
    url = feed_server.add("/bomb", body=bomb, gzip=True)
    with pytest.raises(FetchError, match="cap"):
        get(url, limits=FetchLimits(max_bytes=1024 * 1024))


def test_size_cap_without_content_length(feed_server: FeedServer) -> None:
    url = feed_server.add("/big", body=b"x" * (3 * 1024 * 1024), length=False)
    with pytest.raises(FetchError, match="cap"):
        get(url, limits=FetchLimits(max_bytes=1024 * 1024))


def test_declared_size_over_the_cap_is_refused_before_reading(feed_server: FeedServer) -> None:
    url = feed_server.add("/declared", body=b"x" * 10, headers={"Content-Length": str(50 << 20)})
    with pytest.raises(FetchError, match=r"52,428,800 bytes is over the cap"):
        get(url, limits=FetchLimits(max_bytes=1024 * 1024))


def test_permanent_redirect_is_reported_temporary_is_not(feed_server: FeedServer) -> None:
    final = feed_server.add("/new", body=BODY)
    feed_server.add("/moved", status=301, headers={"Location": "/new"})
    feed_server.add("/temp", status=302, headers={"Location": final})
    moved = get(feed_server.url("/moved"))
    assert moved.body == BODY and moved.permanent_redirect == final
    temp = get(feed_server.url("/temp"))
    assert temp.body == BODY and temp.permanent_redirect is None


def test_redirect_loop_names_the_chain(feed_server: FeedServer) -> None:
    feed_server.add("/a", status=301, headers={"Location": "/b"})
    feed_server.add("/b", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="loop") as error:
        get(feed_server.url("/a"))
    assert "/a -> " in str(error.value) and "/b" in str(error.value)


def test_more_than_five_redirects_stop(feed_server: FeedServer) -> None:
    for i in range(7):
        feed_server.add(f"/r{i}", status=302, headers={"Location": f"/r{i + 1}"})
    feed_server.add("/r7", body=BODY)
    with pytest.raises(FetchError, match="more than 5 redirects") as error:
        get(feed_server.url("/r0"))
    assert "/r5" in str(error.value)


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer) -> None:
    feed_server.add("/evil", status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(FetchError, match="refused a redirect"):
        get(feed_server.url("/evil"))


def test_410_is_gone(feed_server: FeedServer) -> None:
    url = feed_server.add("/gone", status=410)
    with pytest.raises(GoneError):
        get(url)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds(feed_server: FeedServer, status: int) -> None:
    url = feed_server.add("/busy", status=status, headers={"Retry-After": "120"})
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with pytest.raises(RetryLaterError) as error:
        get(url, now=now)
    assert error.value.retry_after == now + timedelta(seconds=120)


def test_retry_after_http_date(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/busy", status=429, headers={"Retry-After": "Wed, 25 Nov 2026 08:00:00 GMT"}
    )
    with pytest.raises(RetryLaterError) as error:
        get(url)
    assert error.value.retry_after == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_unparseable_retry_after_is_none() -> None:
    assert parse_retry_after("soon, maybe") is None
    assert parse_retry_after(None) is None


def test_404_and_500_are_errors_with_the_status(feed_server: FeedServer) -> None:
    feed_server.add("/oops", status=500)
    with pytest.raises(FetchError, match="HTTP 500") as error:
        get(feed_server.url("/oops"))
    assert error.value.status == 500
    with pytest.raises(FetchError, match="HTTP 404"):
        get(feed_server.url("/missing"))


def test_total_deadline_stops_a_drip_feeding_server(feed_server: FeedServer) -> None:
    url = feed_server.add("/drip", body=b"x" * 100, drip=0.2)
    started = asyncio.run(_timed(url, 1.0))
    assert started < 3.0


async def _timed(url: str, deadline: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with make_session(user_agent="t", concurrency=1) as client:
        with pytest.raises(FetchError, match="within 1 s"):
            await fetch(client, url, limits=FetchLimits(timeout=deadline))
    return loop.time() - start


def test_connection_refused_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="cannot connect"):
        get("http://127.0.0.1:9/feed")  # port 9 (discard) is closed on loopback


def test_local_path_and_file_url(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(BODY)
    assert get(str(path)).body == BODY
    assert get(path.as_uri()).body == BODY
    with pytest.raises(FetchError, match="no such file"):
        get(str(tmp_path / "absent.xml"))


def test_one_session_reuses_its_connection_across_requests(feed_server: FeedServer) -> None:
    first = feed_server.add("/a", body=BODY)
    second = feed_server.add("/b", body=BODY)

    async def go() -> None:
        async with make_session(user_agent="t", concurrency=1) as session:
            await fetch(session, first)
            await fetch(session, second)

    asyncio.run(go())
    ports = {hit.client_port for hit in feed_server.hits("/a") + feed_server.hits("/b")}
    assert len(ports) == 1
