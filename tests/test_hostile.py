"""Hostile feeds: what the web throws at a poll, each against a real server on loopback.

Every test here is a row of the "What aggregator survives" table in docs/survival.md (the table
names tests in other modules too). The faults that need a real process (kill -9, a full disk, a
locked database) are in tests/test_faults.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import re
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.errors import ConfigError, ParseError, StorageError
from aggregator.models import Document, FeedOutcome, FeedStatus, PollReport
from aggregator.normalize import MAX_HTML, html_to_text
from aggregator.parse import MAX_AUTHOR_BYTES, MAX_TAG_BYTES, harden, parse_feed
from aggregator.parse import MAX_PARSED_ENTRIES as MAX_PARSED
from aggregator.pipeline import poll
from aggregator.store import Store
from aggregator.workers import MAX_ENTRIES, ParserPool, read_document

from .conftest import FeedServer, opened, rss

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def outcome_of(report: PollReport, url: str) -> FeedOutcome:
    [found] = [o for o in report.outcomes if o.url == url]
    return found


def items(prefix: str, count: int, **extra: str) -> list[dict[str, str]]:
    return [
        {
            "guid": f"{prefix}-{i}",
            "title": f"{prefix.title()} reports event number {i}",
            "link": f"https://{prefix}.example/{i}",
            "description": f"What {prefix} said about event {i}.",
            "pubDate": "Tue, 24 Nov 2026 10:00:00 +0000",
            **extra,
        }
        for i in range(count)
    ]


def traced_poll(config: Config, store: Store) -> tuple[PollReport, int]:
    """A poll, and the most memory Python held in this process during it (tracemalloc)."""
    tracemalloc.start()
    try:
        report = poll(config, store, now=NOW)
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stored_titles(store: Store) -> list[str]:
    return sorted(r["title"] for r in store.db.query("SELECT title FROM articles"))


def item_count(store: Store) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections (the kernel completes the handshake) and never
    answers: nothing ever reads from its listening socket."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        host, port = listener.getsockname()[:2]
        yield f"http://{host}:{port}/feed.xml"


# --- 1. the deadline ----------------------------------------------------------------------------


def test_a_server_that_never_answers_or_drips_hits_the_deadline_and_the_rest_complete(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    fine = feed_server.add("/fine.xml", body=rss("Fine", items("fine", 3)))
    drip = feed_server.add("/drip.xml", body=rss("Drip", items("drip", 3)), drip=1.0)
    with silent_server() as silent:
        config, store = opened(write_config([silent, drip, fine], "polling:\n  timeout: 1\n"))
        report = poll(config, store, now=NOW)
    for url in (silent, drip):
        outcome = outcome_of(report, url)
        assert outcome.status == FeedStatus.ERROR
        assert outcome.message == "no complete answer within 1 s"
    assert outcome_of(report, fine).new_articles == 3
    assert len(stored_titles(store)) == 3


# --- 2. the size cap ----------------------------------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


def big_feed(size: int) -> bytes:
    """A well-formed feed of about ``size`` bytes: many complete items."""
    item = (
        "<item><title>Headline number {0} of a very long feed</title><guid>big-{0}</guid>"
        "<description>{1}</description></item>"
    )
    filler = "words " * 150
    parts, total, i = [], 0, 0
    while total < size:
        part = item.format(i, filler)
        parts.append(part)
        total += len(part)
        i += 1
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
    return (head + "".join(parts) + "</channel></rss>").encode()


@pytest.fixture(scope="module")
def fifty_mb() -> bytes:
    return big_feed(FIFTY_MB)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no Content-Length"),
        pytest.param({"Content-Length": str(10 * FIFTY_MB)}, id="Content-Length too large"),
    ],
)
def test_a_50_mb_body_stops_at_the_cap_in_bounded_memory_and_stores_nothing(
    feed_server: FeedServer,
    write_config: Callable[..., Path],
    fifty_mb: bytes,
    headers: dict[str, str],
) -> None:
    cap = 1_000_000
    url = feed_server.add("/big.xml", body=fifty_mb, headers=headers, length=bool(headers))
    config, store = opened(write_config([url], f"polling:\n  max_bytes: {cap}\n"))
    report, peak = traced_poll(config, store)
    [outcome] = report.outcomes
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message is not None and f"over the cap of {cap:,}" in outcome.message
    assert peak < 12 * cap  # the cap, a few copies of it, the poll's own: never the 50 MB
    assert item_count(store) == 0 and stored_titles(store) == []
    assert store.feeds()[0].etag is None


def test_a_content_length_short_of_the_body_stores_only_whole_entries(
    feed_server: FeedServer, write_config: Callable[..., Path], fifty_mb: bytes
) -> None:
    """The server declares 5,000 bytes and sends 50 MB. The body is what was declared, cut
    mid-entry; the excess is a protocol error that aiohttp may notice first. Either way,
    nothing half-written is stored."""
    declared = 5000
    url = feed_server.add("/short.xml", body=fifty_mb, headers={"Content-Length": str(declared)})
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    complete = fifty_mb[:declared].count(b"</item>")
    assert complete >= 2
    if outcome.status == FeedStatus.OK:
        assert outcome.new_articles == complete
    else:
        assert outcome.status == FeedStatus.ERROR
        assert outcome.message is not None and len(outcome.message) <= 500
        assert "\n" not in outcome.message
        assert outcome.new_articles == 0
    titles = stored_titles(store)
    assert len(titles) == outcome.new_articles
    assert all(t.endswith("of a very long feed") for t in titles)


def test_a_body_cut_short_by_the_server_is_an_error_and_stores_nothing(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    body = rss("Cut", items("cut", 5))
    url = feed_server.add(
        "/cut.xml", body=body, headers={"Content-Length": str(len(body) + 5000)}, length=False
    )
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message is not None and "cut short" in outcome.message
    assert item_count(store) == 0


# --- 3. corrupt compression ---------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("gzip", b"\x1f\x8b\x08\x00garbage that is not deflate", id="corrupt gzip"),
        pytest.param("gzip", gzip.compress(b"<rss>" * 1000)[:-40] + b"X" * 40, id="gzip tail"),
        pytest.param("deflate", b"\x00\xffnot deflate at all", id="corrupt deflate"),
        pytest.param("br", b"whatever", id="an encoding not asked for"),
    ],
)
def test_corrupt_compression_is_a_clear_error(
    feed_server: FeedServer, write_config: Callable[..., Path], encoding: str, body: bytes
) -> None:
    url = feed_server.add("/z.xml", body=body, headers={"Content-Encoding": encoding})
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.ERROR
    assert outcome.message is not None
    assert "could not be decompressed" in outcome.message or "did not ask for" in outcome.message
    assert item_count(store) == 0


@pytest.mark.parametrize("wrap", [raw_deflate, zlib.compress], ids=["raw deflate", "zlib"])
def test_deflate_raw_or_wrapped_is_read(
    feed_server: FeedServer, write_config: Callable[..., Path], wrap: Callable[[bytes], bytes]
) -> None:
    body = wrap(rss("Deflated", items("deflated", 4)))
    url = feed_server.add("/d.xml", body=body, headers={"Content-Encoding": "deflate"})
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.OK and outcome.new_articles == 4


# --- 5. an unparseable Retry-After --------------------------------------------------------------


def test_an_unparseable_retry_after_gets_the_default_backoff(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/busy.xml", status=503, headers={"Retry-After": "after lunch"})
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.ERROR and outcome.message == "HTTP 503 Service Unavailable"
    feed = store.feeds()[0]
    assert feed.retry_after is None and feed.error_count == 1
    # The first backoff step is the interval, jittered by at most a tenth either way.
    assert NOW + 0.85 * config.polling.interval <= feed.next_due
    assert feed.next_due <= NOW + 1.15 * config.polling.interval


# --- 6. failures leave the seen-state alone -----------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_a_failure_between_two_good_fetches_brings_back_no_old_item_as_new(
    feed_server: FeedServer, write_config: Callable[..., Path], status: int
) -> None:
    body = rss("Steady", items("steady", 5))
    url = feed_server.add("/steady.xml", body=body)
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 5
    feed_server.add("/steady.xml", status=status, body=b"oops")
    [failed] = poll(config, store, now=NOW + HOUR, all_feeds=True).outcomes
    assert failed.status == FeedStatus.ERROR and str(status) in (failed.message or "")
    assert item_count(store) == 5
    feed_server.add("/steady.xml", body=body)
    report = poll(config, store, now=NOW + 2 * HOUR, all_feeds=True)
    assert report.new_articles == 0 and item_count(store) == 5
    assert store.feeds()[0].error_count == 0


def test_a_host_that_does_not_resolve_is_an_error_and_counts(
    write_config: Callable[..., Path],
) -> None:
    url = "http://no-such-host.invalid/feed.xml"
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.ERROR
    assert (outcome.message or "").startswith("cannot connect")
    assert store.feeds()[0].error_count == 1 and item_count(store) == 0


# --- 7. certificates ----------------------------------------------------------------------------


@contextlib.contextmanager
def https_server(body: bytes) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate comes from a CA nobody trusts."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class TlsServer(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, object]:
            conn, address = self.socket.accept()
            return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), (
                address
            )

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client refusing our certificate is the point

    server = TlsServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_certificate_nobody_vouches_for_is_an_error(write_config: Callable[..., Path]) -> None:
    with https_server(rss("Secret", items("secret", 2))) as url:
        config, store = opened(write_config([url]))
        [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.ERROR
    assert "certificate" in (outcome.message or "")
    assert item_count(store) == 0


@pytest.mark.parametrize("key", ["verify", "verify_ssl", "insecure", "ssl_verify"])
def test_there_is_no_switch_to_turn_certificate_checks_off(
    write_config: Callable[..., Path], key: str
) -> None:
    path = write_config(["https://a.example/feed"], f"polling:\n  {key}: false\n")
    with pytest.raises(ConfigError, match=f"polling.{key}: unknown key"):
        load_config(path, environ={})


# --- 8. a login page ----------------------------------------------------------------------------

LOGIN_PAGE = b"""<!DOCTYPE html><html><head><title>Sign in</title></head><body>
<form action="/login" method="post"><input name="user"><input type="password" name="pw">
<button>Sign in</button></form></body></html>"""


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/rss+xml"])
def test_a_200_login_page_is_not_a_feed(
    feed_server: FeedServer, write_config: Callable[..., Path], content_type: str
) -> None:
    url = feed_server.add("/feed", body=LOGIN_PAGE, headers={"Content-Type": content_type})
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.NOT_A_FEED
    assert outcome.message == "the server sent an HTML page, not a feed"


# --- 9. entity bombs and external entities ------------------------------------------------------


def billion_laughs() -> bytes:
    """Ten levels of ten: 10^9 "lol"s, with every declaration on one line (which slips past
    feedparser's own line-based clean-up)."""
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [{"".join(levels)}]><rss version="2.0"><channel>'
        "<title>Laughs &lol9;</title><item><title>Bomb &lol9;</title><guid>lol</guid>"
        "<description>&lol9;</description></item></channel></rss>"
    ).encode()


def external_entity(path: Path) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">'
        f'<!ENTITY % remote SYSTEM "file://{path}"> %remote;]>'
        '<rss version="2.0"><channel><title>XXE</title><item><title>Leak &xxe; here</title>'
        "<guid>xxe</guid><description>&xxe;</description></item></channel></rss>"
    ).encode()


def test_entity_bombs_and_external_entities_are_defused(
    feed_server: FeedServer, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    laughs = feed_server.add("/laughs.xml", body=billion_laughs())
    xxe = feed_server.add("/xxe.xml", body=external_entity(secret))
    config, store = opened(write_config([laughs, xxe]))
    report = poll(config, store, now=NOW)
    assert outcome_of(report, laughs).status == FeedStatus.OK
    assert outcome_of(report, xxe).status == FeedStatus.OK
    rows = list(store.db.query("SELECT title, summary FROM articles"))
    assert len(rows) == 2
    assert all("lollol" not in r["title"] + r["summary"] for r in rows)
    store.close()
    everything = b"".join(p.read_bytes() for p in tmp_path.glob("agg.db*"))
    assert b"TOP-SECRET" not in everything


def test_harden_keeps_plain_entities_and_drops_nested_external_and_parameter_ones() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY id "tag:example.com,">'
        b'<!ENTITY nest "&id;&id;"><!ENTITY ext SYSTEM "file:///etc/passwd">'
        b'<!ENTITY % p "x">\n]>\n<rss version="2.0"><channel><item><guid>&id;1</guid>'
        b"<title>&nest; &ext;</title></item></channel></rss>"
    )
    safe = harden(body)
    assert b'<!ENTITY id "tag:example.com,">' in safe
    for dropped in (b"nest", b"SYSTEM", b"%"):
        assert dropped not in safe.split(b"]>")[0]
    [entry] = parse_feed("https://a.example/", safe).entries
    assert entry.guid == "tag:example.com,1"
    assert "/root:" not in (entry.title or "")


@pytest.mark.parametrize(
    "decoy", ['<!ENTITY z "<b>">', "<!-- <a href=x> -->"], ids=["markup in a value", "comment"]
)
def test_a_bomb_behind_markup_in_the_doctype_is_defused_too(decoy: str) -> None:
    body = billion_laughs().replace(b"[<!ENTITY lol0", b"[" + decoy.encode() + b"<!ENTITY lol0")
    safe = harden(body)
    assert b"&lol8;" not in safe.split(b"]>")[0] and b"lol9" not in safe.split(b"]>")[0]
    [entry] = parse_feed("https://a.example/", safe).entries
    assert len(entry.title or "") < 100


def test_entities_of_character_references_are_kept() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;"><!ENTITY mdash "&#x2014;">]>'
        b'<rss version="2.0"><channel><title>E</title><item><guid>1</guid>'
        b"<title>One&nbsp;two &mdash; three</title></item></channel></rss>"
    )
    feed = parse_feed("https://e.example/", harden(body))
    assert feed.entries[0].title == "One\u00a0two \u2014 three"


def test_harden_keeps_plain_entities_only_while_they_expand_no_more_than_the_document() -> None:
    value = b"x" * 200
    refs = b"&big;" * 1000  # 200 KB of expansion from a document of 5 KB
    body = b'<!DOCTYPE rss [<!ENTITY big "' + value + b'">]><rss><title>' + refs + b"</title></rss>"
    assert b"<!ENTITY" not in harden(body)
    small = b'<!DOCTYPE rss [<!ENTITY big "' + value + b'">]><rss><title>&big;</title></rss>'
    assert b"<!ENTITY big" in harden(small)


def test_a_document_without_a_doctype_or_long_authors_is_left_as_it_is() -> None:
    body = rss("Plain", items("plain", 3, author="editor@plain.example (Ed Itor)"))
    assert harden(body) is body


# --- 10. author fields that make feedparser quadratic -------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "<author>{}</author>",
        "<dc:creator>{}</dc:creator>",
        "<managingEditor>{}</managingEditor>",
        "<itunes:author><![CDATA[{}]]></itunes:author>",
        '<author xml:lang="en">{}</author>',
    ],
)
@pytest.mark.parametrize(
    "text", ["a" * 65536, "é" * 40000, "&amp;" * 20000], ids=["ascii", "utf-8", "entities"]
)
def test_an_enormous_author_field_is_cut_before_parsing(field: str, text: str) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>A</title>'
        f"<item><title>Authored</title><guid>1</guid>{field.format(text)}</item>"
        "</channel></rss>"
    ).encode()
    safe = harden(body)
    assert len(safe) < len(body) - 10000
    # What is left of the field is whole characters and whole entity references.
    safe.decode("utf-8")
    [entry] = parse_feed("https://a.example/", safe).entries
    assert entry.title == "Authored"
    assert entry.author is not None and len(entry.author.encode()) <= MAX_AUTHOR_BYTES


@pytest.mark.parametrize(
    "field",
    [
        "<author>" + "<!-- -->".join(["a" * 1000] * 33) + "</author>",
        "<dc:creator>" + "".join(f"<![CDATA[{'b' * 1000}]]>" for _ in range(33)) + "</dc:creator>",
        "<author><name>" + "c" * 5000 + "<!---->" + "c" * 30000 + "</name></author>",
    ],
    ids=["split by comments", "CDATA sections in a row", "nested name"],
)
def test_an_author_split_into_pieces_is_cut_whole(field: str) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>A</title>'
        f"<item><title>Authored</title><guid>1</guid>{field}</item></channel></rss>"
    ).encode()
    safe = harden(body)
    assert len(safe) < len(body) - 30000
    [entry] = parse_feed("https://a.example/", safe).entries
    assert entry.title == "Authored"
    assert entry.author is not None and len(entry.author.encode()) <= MAX_AUTHOR_BYTES


@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel>" + b"<author>x" * 200_000 + b"</channel></rss>",
        b"<rss><channel>"
        + b"".join(b"<p%d:author>" % n for n in range(40_000))
        + b"x" * 4_000_000
        + b"</channel></rss>",
        b"<!DOCTYPE a " * 250_000,
        b"<!DOCTYPE a [" * 250_000,
    ],
    ids=["unclosed author tags", "distinct prefixes", "unclosed DOCTYPEs", "unclosed subsets"],
)
def test_harden_reads_hostile_megabytes_in_one_pass(body: bytes) -> None:
    started = time.monotonic()
    harden(body)
    assert time.monotonic() - started < 10  # quadratic, each took from 9 s to hours


def test_a_self_closing_author_is_not_taken_for_an_open_one() -> None:
    text = "Words of a long description. " * 60
    entries = [
        {"guid": "1", "title": "First", "description": text, "dc:creator": ""},
        {"guid": "2", "title": "Second", "description": text},
        {"guid": "3", "title": "Third", "description": text, "dc:creator": "Bob"},
    ]
    body = (
        rss("Selfclosing", entries)
        .replace(b"<dc:creator></dc:creator>", b"<dc:creator />")
        .replace(
            b'<rss version="2.0">',
            b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        )
    )
    assert b"<dc:creator />" in body
    assert harden(body) is body
    assert [e.title for e in parse_feed("https://s.example/", body).entries] == [
        "First",
        "Second",
        "Third",
    ]


def test_a_long_atom_author_with_elements_keeps_its_name() -> None:
    avatar = "https://blogger.example/img/" + "a" * 1200 + ".png"
    body = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:gd="http://schemas.google.com/g/2005"><title>B</title><entry><id>1</id>'
        "<title>Post</title><author><name>Jane Doe</name><email>noreply@blogger.com</email>"
        f'<gd:image rel="avatar" src="{avatar}"/></author></entry></feed>'
    ).encode()
    [entry] = parse_feed("https://b.example/", harden(body)).entries
    assert entry.author == "Jane Doe (noreply@blogger.com)"


def test_a_feed_with_a_64_kb_author_is_stored(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/a.xml", body=rss("Authors", items("authors", 3, author="x" * 65536)))
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.OK and outcome.new_articles == 3


# --- 11. bad bytes and contradicting encodings --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "logged"),
    [
        pytest.param(
            rss("Bytes", items("bytes", 3)).replace(b"event number 1", b"event \xff\xfe number 1"),
            "application/rss+xml; charset=utf-8",
            "parsed despite a problem",
            id="invalid UTF-8",
        ),
        pytest.param(
            rss("Caf\u00e9", items("accent", 3, category="caf\u00e9")),
            "application/rss+xml; charset=iso-8859-1",
            "the server says charset=iso-8859-1, the document utf-8; the bytes are UTF-8",
            id="the header says Latin-1, the document and the bytes UTF-8",
        ),
        pytest.param(
            rss("Caf\u00e9", items("latin", 3)).decode().encode("latin-1"),
            "application/rss+xml",
            "parsed despite a problem",
            id="Latin-1 bytes in a document that says UTF-8",
        ),
    ],
)
def test_bad_bytes_and_contradicting_encodings_are_tolerated_and_logged(
    feed_server: FeedServer,
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str,
    logged: str,
) -> None:
    url = feed_server.add("/enc.xml", body=body, headers={"Content-Type": content_type})
    config, store = opened(write_config([url]))
    with caplog.at_level(logging.INFO, logger="aggregator"):
        [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.OK and outcome.new_articles == 3
    assert any(logged in r.getMessage() for r in caplog.records)
    [title] = [r["feed_title"] for r in store.db.query("SELECT feed_title FROM feeds")]
    assert title in ("Bytes", "Caf\u00e9")  # never mojibake such as "CafÃ©"


# --- identity: 12, 15, 16, 17 -------------------------------------------------------------------


def test_identity_falls_back_from_guid_to_link_to_content_and_skips_only_the_empty(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    entries = [
        {"guid": "g-1", "title": "An item with a guid"},
        {"link": "https://id.example/only-a-link", "title": "An item with only a link"},
        {"title": "An item with only words", "description": "Nothing else to know it by."},
        {"pubDate": "Tue, 24 Nov 2026 10:00:00 +0000"},  # nothing at all
    ]
    body = rss("Identity", entries)
    url = feed_server.add("/id.xml", body=body)
    config, store = opened(write_config([url]))
    [outcome] = poll(config, store, now=NOW).outcomes
    assert outcome.status == FeedStatus.OK and outcome.new_articles == 3
    assert outcome.entries == 4
    keys = sorted(r["item_key"] for r in store.db.query("SELECT item_key FROM items"))
    assert (
        keys[0].startswith("guid:")
        and keys[1].startswith("hash:")
        and keys[2] == ("link:https://id.example/only-a-link")
    )
    feed_server.add("/id.xml", body=rss("Identity", list(reversed(entries))))
    assert poll(config, store, now=NOW + HOUR, all_feeds=True).new_articles == 0


def test_a_guid_twice_in_one_feed_is_one_row(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    twice = items("twice", 3)
    twice[1]["guid"] = twice[0]["guid"]
    url = feed_server.add("/twice.xml", body=rss("Twice", twice))
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 2
    rows = list(store.db.query("SELECT item_key FROM items WHERE item_key = 'guid:twice-0'"))
    assert len(rows) == 1


def test_an_old_entry_that_reappears_is_not_news_again(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    old, new = items("old", 2), items("new", 2)
    url = feed_server.add("/f.xml", body=rss("F", old))
    config, store = opened(write_config([url]))
    assert poll(config, store, now=NOW).new_articles == 2
    feed_server.add("/f.xml", body=rss("F", new))  # the old ones fall off the feed
    assert poll(config, store, now=NOW + HOUR, all_feeds=True).new_articles == 2
    feed_server.add("/f.xml", body=rss("F", old + new))  # and come back days later
    assert poll(config, store, now=NOW + 72 * HOUR, all_feeds=True).new_articles == 0
    assert item_count(store) == 4


def test_a_date_far_in_the_future_is_clamped_to_first_seen(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    future = items("future", 1, pubDate="Fri, 01 Jan 2100 00:00:00 +0000")
    url = feed_server.add("/future.xml", body=rss("Future", future))
    config, store = opened(write_config([url]))
    poll(config, store, now=NOW)
    [row] = store.db.query("SELECT published, first_seen FROM articles")
    assert row["published"] == row["first_seen"] == NOW.isoformat(timespec="seconds")


# --- entries: a feed with more than any news feed carries ---------------------------------------


def test_a_document_is_read_up_to_5000_entries_its_first_and_last_halves() -> None:
    many = rss("Many", [{"guid": f"m-{i}", "title": f"Item {i}"} for i in range(MAX_PARSED + 7)])
    feed = parse_feed("https://m.example/", many)
    half = MAX_PARSED // 2
    expected = [f"m-{i}" for i in [*range(half), *range(half + 7, MAX_PARSED + 7)]]
    assert [e.guid for e in feed.entries] == expected
    assert feed.warning == "read the first and the last 2,500 entries of a longer document"
    exact = rss("Exact", [{"guid": f"e-{i}", "title": f"Item {i}"} for i in range(MAX_PARSED)])
    feed = parse_feed("https://e.example/", exact)
    assert len(feed.entries) == MAX_PARSED and feed.warning is None


@pytest.mark.parametrize(
    "entry", [b"<item/>", b"<item><title>x</title>"], ids=["empty", "never closed"]
)
def test_entries_are_counted_where_they_open_however_they_end(entry: bytes) -> None:
    body = b'<rss version="2.0"><channel><title>E</title>' + entry * 200_000 + b"</channel></rss>"
    started = time.monotonic()
    feed = parse_feed("https://e.example/", body)
    assert len(feed.entries) <= MAX_PARSED
    assert time.monotonic() - started < 30  # read whole, it took minutes


def test_a_feed_listed_oldest_first_keeps_its_newest_entries() -> None:
    count = MAX_PARSED + 1000
    oldest_first = [
        {
            "guid": f"o-{i}",
            "title": f"Item {i}",
            "pubDate": (NOW - timedelta(minutes=count - i)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        }
        for i in range(count)
    ]
    document = read_document("https://o.example/", rss("Old first", oldest_first), {}, NOW)
    assert {a.guid for a in document.articles} == {f"o-{i}" for i in range(count - 1000, count)}


def test_a_document_of_many_thousand_entries_keeps_the_newest() -> None:
    many = [
        {
            "guid": f"m-{i}",
            "title": f"Item {i}",
            "pubDate": (NOW - timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        }
        for i in range(MAX_ENTRIES + 500)
    ]
    many.reverse()  # oldest first, as some feeds list them
    document = read_document("https://m.example/", rss("Many", many), {}, NOW)
    assert document.entries == MAX_ENTRIES + 500
    assert len(document.articles) == MAX_ENTRIES
    assert {a.guid for a in document.articles} == {f"m-{i}" for i in range(MAX_ENTRIES)}
    assert document.warning is not None and "kept the newest 1,000 of 1,500" in document.warning


# --- memory: bodies waiting for a parser ---------------------------------------------------------


@pytest.mark.slow
def test_bodies_and_documents_in_memory_are_bounded_by_the_concurrency(
    feed_server: FeedServer, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback answers faster than a parser reads and a store writes: without a bound, every
    body and every parsed document would wait in memory at once. 24 feeds of 1 MB, two in
    flight, one parser process: the store never gets more than three documents at once, and
    the poll's memory stays well under what all the bodies and documents come to."""
    size = 1024 * 1024
    urls = [
        feed_server.add(f"/big-{n}.xml", body=big_feed(size).replace(b"big-", b"b%d-" % n))
        for n in range(24)
    ]
    config, store = opened(
        write_config(urls, "polling:\n  concurrency: 2\n  per_host: 0\n  parse_workers: 1\n")
    )
    batches: list[int] = []
    store_batch = pipeline._Poller._store_batch

    def counted(poller: pipeline._Poller, items: list[pipeline._Ready]) -> list[FeedOutcome]:
        batches.append(len(items))
        return store_batch(poller, items)

    monkeypatch.setattr(pipeline._Poller, "_store_batch", counted)
    report, peak = traced_poll(config, store)
    assert all(o.status == FeedStatus.OK for o in report.outcomes)
    assert sum(batches) == 24 and max(batches) <= 3
    assert peak < 36 * size  # unbounded, this poll peaked at 56 MB; bounded, at 28 MB


# --- the deadline on reading a document ------------------------------------------------------


def many_attributes(count: int) -> bytes:
    """feedparser looks up each attribute of an element in a list: quadratic in their number
    (20,000 took 2.5 s, 100,000 over a minute)."""
    attributes = " ".join(f'a{n}="v"' for n in range(count))
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>'
        f"<item><title>Slow</title><guid>1</guid><category {attributes}>x</category>"
        '<enclosure url="https://a.example/x.mp3" type="audio/mpeg" /></item></channel></rss>'
    ).encode()


def test_a_cdata_section_with_a_long_comparison_is_not_taken_for_a_tag() -> None:
    prose = "when x <y and the rest of a long sentence " + "goes on and on " * 400
    entries = [
        {"guid": f"{n}", "title": f"Item {n}", "description": f"<![CDATA[{prose}]]>"}
        for n in range(3)
    ]
    body = rss("Prose", entries)
    assert harden(body) is body
    assert len(parse_feed("https://p.example/", body).entries) == 3


def test_an_element_with_100000_attributes_keeps_those_that_fit() -> None:
    body = many_attributes(100_000)
    safe = harden(body)
    assert len(safe) < 4 * MAX_TAG_BYTES
    assert re.search(rb'<category( a\d+="v")+>x</category>', safe)
    assert b'<enclosure url="https://a.example/x.mp3" type="audio/mpeg" />' in safe
    [entry] = parse_feed("https://slow.example/", safe).entries
    assert entry.title == "Slow" and entry.guid == "1"


# The alarm may land in a garbage collector's callback, where Python reports it and drops it;
# the deadline's next alarm is what ends the read then (see the test below).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("workers", [0, 1], ids=["in this process", "in a worker process"])
def test_a_document_that_reads_too_slowly_is_given_up_at_the_deadline(workers: int) -> None:
    async def read(pool: ParserPool, body: bytes) -> Document:
        return await pool.read("https://slow.example/", body, {}, NOW)

    # The deadline is made tiny here, so an honest big document stands in for a slow one.
    body = rss("Big", [{"guid": f"g{n}", "title": f"Item {n}"} for n in range(4000)])
    with ParserPool(workers, deadline=0.05) as pool:
        started = time.monotonic()
        with pytest.raises(ParseError, match=r"gave up reading it after 0.05 s"):
            asyncio.run(read(pool, body))
        assert time.monotonic() - started < 30  # with the worker's start; reading whole: minutes
        fine = asyncio.run(read(pool, rss("Fine", items("fine", 2))))  # the pool goes on
    assert len(fine.articles) == 2


def test_a_store_that_fails_ends_the_poll_with_its_error_while_fetchers_wait(
    feed_server: FeedServer, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve feeds, two slots: when the store fails, the fetchers waiting to hand it their
    documents must not wait for ever (holding the run lock); the poll ends with the error."""
    urls = [feed_server.add(f"/f{n}.xml", body=rss("F", items(f"f{n}", 2))) for n in range(12)]
    config, store = opened(
        write_config(urls, "polling:\n  concurrency: 2\n  per_host: 0\n  parse_workers: 0\n")
    )

    def full(*args: object, **kwargs: object) -> list[int]:
        raise StorageError("agg.db: the disk is full")

    monkeypatch.setattr(Store, "save_poll", full)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            poll(config, store, now=NOW)
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the poll hung"
    assert len(raised) == 1 and isinstance(raised[0], StorageError)
    assert str(raised[0]) == "agg.db: the disk is full"


def test_markup_is_read_up_to_16_kb_and_an_unclosed_iframe_keeps_the_text_after_it() -> None:
    assert html_to_text("<p>First.</p><iframe src=x><p>Second <b>part</b></p>") == (
        "First. Second part"
    )
    assert html_to_text("<p>A</p><noscript>Enable it</noscript><p>B</p>") == "A B"
    nested = "<div>" * 200_000 + "deep"  # nh3 is quadratic in nesting: two minutes whole
    started = time.monotonic()
    assert html_to_text(nested) == ""  # the text lies past the first 16 KB
    assert time.monotonic() - started < 10
    assert html_to_text("x" * (MAX_HTML + 500)) == "x" * MAX_HTML


def test_an_alarm_that_is_dropped_comes_again() -> None:
    """An _Overtime swallowed where it landed (as in a __del__) is raised again."""
    from aggregator.workers import _deadline, _Overtime

    dropped = 0
    started = time.monotonic()
    with pytest.raises(_Overtime), _deadline(0.02):
        while True:
            # All of the loop's work inside the try: an alarm landing in the loop's own
            # condition would leave the loop before any was dropped.
            try:
                if time.monotonic() - started >= 5:
                    break
                sum(range(1000))
            except _Overtime:
                if dropped:
                    raise
                dropped += 1  # the first is swallowed, as in a garbage collector's callback
    assert dropped == 1 and time.monotonic() - started < 1
