"""A farm of hostile feed servers: do polls in a row stay bounded, keep every good item and
heed every server's word?

The farm is a set of threaded HTTP servers on loopback, each on its own address of 127.0.0.0/8
(so each counts as a host of its own), with a request log:

- 40 good feeds (RSS and Atom in turn, 20 items each with unique guids, titles and links) that
  send ETag and Last-Modified and answer a matching If-None-Match / If-Modified-Since with 304;
- feeds that are good but reached oddly: raw deflate, a 301 to a new place (to be fetched from
  there on), a 302 (not to be remembered);
- good items beside fields that cost a parser more than their size: 32 KB <author> and
  <dc:creator> (feedparser's e-mail regex is quadratic), the same in 1,000-byte pieces (comments,
  CDATA sections), an element with 100,000 attributes (feedparser looks each one up in a list),
  a description of 200,000 nested <div> (nh3's time grows with the square of the depth), one of
  1,800,000 <p>x</p> (14 MB, under the cap: a gigabyte in the process that parses it);
- servers that must end as a failed feed: one that never answers, one that drips a byte a
  second, 50 MB with no Content-Length or with a wrong one, a 1 GiB gzip bomb, corrupt gzip,
  a redirect loop, 7 redirects, redirects to file:///etc/passwd and to ftp://, 410, 429 and 503
  with Retry-After in seconds and as a date (an hour ahead), 503 with a garbage Retry-After,
  404, 500, an HTML login page, an endless chunked stream, 100,000 headers, a 1 MB header
  line, a connection closed mid-body;
- feeds with bad parts whose good items should survive: invalid UTF-8, a header charset that
  contradicts the XML declaration, guids regenerated on every fetch, a guid twice in one feed,
  the same link on every item, far-future dates, entity declarations on one line (billion
  laughs; XXE reading /etc/passwd) and on lines of their own;
- a 15 MB feed of ~150,000 tiny items (under the 15 MiB cap, so it is parsed and stored).

Then the real CLI runs, each poll in its own process, against a fresh database:
  1. `poll` (everything is new, so everything is fetched);
  2. `poll` again (the schedule and the servers' words hold: nothing is due);
  3. `poll --all` (our schedule is ignored, but never a Retry-After nor a 410).
For each poll: wall time, the peak RSS of its process tree (sampled from /proc every 0.1 s,
summed over the process and its descendants: the parser workers are forked, so shared pages
count more than once) and the peak of its largest process (VmHWM, sampled likewise). Then the
database (read-only) and the request logs are checked: see `checks`. Each check prints PASS or
FAIL; the table lists every feed that is not one of the 40 good ones, with its status and
message. Each poll's stderr (-v, every line timed) is kept with --keep.

polling.timeout is 10 s (--timeout), so a run takes about half a minute when all is well; a
poll is called slow beyond twice the timeout, and heavy beyond 1 GiB. The machine is shared (2
cores), and the farm's servers run in this process, on the same cores as the poll.

    python benchmarks/hostile_farm.py                     # one run
    python benchmarks/hostile_farm.py --runs 3            # medians of three runs
    python benchmarks/hostile_farm.py --only nested-divs-200k,gone-410   # good feeds + these
    python benchmarks/hostile_farm.py --skip tiny-items-15mb --keep /tmp/farm
    python benchmarks/hostile_farm.py --project /tmp/head # another checkout's cli.py

(--project: e.g. `git archive HEAD | tar -x -C /tmp/head`, to compare with the last commit.)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import gzip
import hashlib
import os
import random
import re
import select
import shutil
import signal
import socket
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
SUMMARY = re.compile(r"([\d,]+) feeds?: ([\d,]+) ok, ([\d,]+) not modified, ([\d,]+) failed.*")
POLLS = (("1 poll", ()), ("2 poll", ()), ("3 poll --all", ("--all",)))
FLOOD = 50 * 1000 * 1000  # bytes the flooding servers send
HOSTILE = "HOSTILE"  # in every title a failing server sends, so a stored one shows


# --- the servers ---------------------------------------------------------------------------


@dataclass
class Hit:
    """One request as a server saw it."""

    poll: int
    base: str
    path: str
    headers: dict[str, str]
    started: float
    status: int | None = None  # what we answered, when we did
    sent: int = 0  # body bytes written
    finished: float = 0.0


class Handler(socketserver.StreamRequestHandler):
    """Reads requests on a connection (keep-alive) and hands each to its route."""

    server: Server

    def handle(self) -> None:
        farm = self.server.farm
        while not farm.stop.is_set():
            try:
                line = self.rfile.readline(65536)
                if not line.strip():
                    return
                _, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (raw := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
            except (OSError, ValueError):
                return
            hit = Hit(farm.poll, self.server.base, path, headers, time.time())
            farm.hits.append(hit)
            route = self.server.routes.get(path, not_found)
            try:
                keep = route(self, hit)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                keep = False
            finally:
                hit.finished = time.time()
            if not keep:
                return

    def send(
        self,
        hit: Hit,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        length: bool = True,
    ) -> bool:
        """A whole answer; with ``length`` False, no Content-Length and the connection closes."""
        hit.status = status
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Whatever')}", *map(": ".join, headers)]
        head.append(f"Content-Length: {len(body)}" if length else "Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        hit.sent = len(body)
        return length

    def alive(self) -> bool:
        """Whether the client still holds the connection (it sent nothing more, nor closed)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return True
        try:
            return self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False


REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
Route = Callable[[Handler, Hit], bool]


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, farm: Farm, host: str) -> None:
        super().__init__((host, 0), Handler)
        self.farm = farm
        self.routes: dict[str, Route] = {}
        host, port = self.server_address[:2]
        self.base = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.base + path


class Farm:
    """Every server, and every request any of them saw, by poll."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hits: list[Hit] = []
        self.poll = 0
        self.servers: list[Server] = []

    def server(self, host: str) -> Server:
        server = Server(self, host)
        self.servers.append(server)
        return server

    def close(self) -> None:
        self.stop.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def hits_of(self, url: str, poll: int | None = None) -> list[Hit]:
        return [h for h in self.hits if h.base + h.path == url and (poll is None or h.poll == poll)]


def not_found(h: Handler, hit: Hit) -> bool:
    return h.send(hit, 404, [("Content-Type", "text/plain")], b"no such feed")


# --- documents -----------------------------------------------------------------------------


def make_words(n: int = 4000, seed: int = 11) -> list[str]:
    """Made-up words, so that titles share no headline fingerprints with one another."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3)))
    return sorted(words)


WORDS = make_words()


@dataclass
class Item:
    guid: str | None
    title: str  # plain text, as it should be stored
    link: str | None = None
    summary: str = ""
    published: datetime | None = None
    date_raw: str | None = None  # a date as written, instead of ``published``
    raw_title: str | None = None  # XML written instead of the escaped title
    extra: str = ""  # more XML inside the item


def story_items(prefix: str, site: str, rng: random.Random, now: datetime, n: int) -> list[Item]:
    return [
        Item(
            guid=f"{prefix}-{i:02d}",
            title=" ".join(rng.sample(WORDS, 7)).capitalize(),
            link=f"{site}2026/{prefix}-{i:02d}.html",
            summary=" ".join(rng.sample(WORDS, 24)).capitalize() + ".",
            published=now - timedelta(hours=3 * i + 1, minutes=rng.randrange(60)),
        )
        for i in range(n)
    ]


def rss(
    title: str,
    site: str,
    items: list[Item],
    *,
    doctype: str = "",
) -> str:
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}',
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>\n',
        f"<title>{escape(title)}</title><link>{escape(site)}</link>",
        "<description>the hostile farm</description>\n",
    ]
    for it in items:
        parts.append("<item>")
        parts.append(f"<title>{it.raw_title or escape(it.title)}</title>")
        if it.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(it.guid)}</guid>')
        if it.link:
            parts.append(f"<link>{escape(it.link)}</link>")
        if it.summary:
            parts.append(f"<description>{escape(it.summary)}</description>")
        date = it.date_raw or (it.published and email.utils.format_datetime(it.published, True))
        if date:
            parts.append(f"<pubDate>{date}</pubDate>")
        parts.append(f"{it.extra}</item>\n")
    parts.append("</channel></rss>\n")
    return "".join(parts)


def atom(title: str, site: str, items: list[Item]) -> str:
    newest = max((it.published for it in items if it.published), default=datetime.now(UTC))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><link href={quoteattr(site)}/>",
        f"<id>{escape(site)}</id><updated>{newest.isoformat()}</updated>\n",
    ]
    for it in items:
        parts.append(f"<entry><id>{escape(it.guid or '')}</id><title>{escape(it.title)}</title>")
        if it.link:
            parts.append(f"<link href={quoteattr(it.link)}/>")
        if it.published:
            parts.append(f"<updated>{it.published.isoformat()}</updated>")
        parts.append(f"<summary>{escape(it.summary)}</summary>{it.extra}</entry>\n")
    parts.append("</feed>\n")
    return "".join(parts)


def hostile_items(name: str, n: int) -> str:
    """Items a failing server sends: marked, so that one stored by mistake shows."""
    return "".join(
        f"<item><title>{HOSTILE} {name} {i}</title><guid>{name}-{i}</guid>"
        f"<link>http://{name}.hostile.example/{i}</link></item>\n"
        for i in range(n)
    )


def flood_block(name: str) -> bytes:
    """About a megabyte of marked items, repeated by the flooding servers."""
    return hostile_items(name, 10_000).encode()


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


_BOMB: bytes | None = None


def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed (about a megabyte), made once."""
    global _BOMB
    if _BOMB is None:
        z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(MiB)
        _BOMB = b"".join([*(z.compress(zeros) for _ in range(1024)), z.flush()])
    return _BOMB


# --- routes --------------------------------------------------------------------------------


def static(
    body: bytes,
    ctype: str = "application/rss+xml; charset=utf-8",
    *,
    validators: bool = True,
) -> Route:
    """A document with ETag and Last-Modified (honoured with a 304), or without them."""
    etag, modified = etag_of(body), http_date(time.time() - 3600)

    def route(h: Handler, hit: Hit) -> bool:
        if validators and (
            hit.headers.get("if-none-match") == etag
            or hit.headers.get("if-modified-since") == modified
        ):
            return h.send(hit, 304, [("ETag", etag)])
        more = [("ETag", etag), ("Last-Modified", modified)] if validators else []
        return h.send(hit, 200, [("Content-Type", ctype), *more], body)

    return route


def status(code: int, *headers: tuple[str, str] | Callable[[], tuple[str, str]]) -> Route:
    def route(h: Handler, hit: Hit) -> bool:
        now = [x() if callable(x) else x for x in headers]
        return h.send(hit, code, [("Content-Type", "text/plain"), *now], b"nope")

    return route


def redirect(code: int, location: str) -> Route:
    def route(h: Handler, hit: Hit) -> bool:
        return h.send(hit, code, [("Location", location)])

    return route


def silent(h: Handler, hit: Hit) -> bool:
    """Takes the request, then never says a word until the client gives up."""
    while not h.server.farm.stop.wait(0.2):
        if not h.alive():
            break
    return False


def drip(body: bytes) -> Route:
    def route(h: Handler, hit: Hit) -> bool:
        hit.status = 200
        h.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for i in range(len(body)):
            if h.server.farm.stop.wait(1.0) or not h.alive():
                break
            h.wfile.write(body[i : i + 1])
            hit.sent += 1
        return False

    return route


def flood(name: str, declared: int | None) -> Route:
    """FLOOD bytes of marked items, with Content-Length ``declared`` (None: none at all)."""
    block = flood_block(name)
    head = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Flood</title>\n'

    def route(h: Handler, hit: Hit) -> bool:
        hit.status = 200
        length = b"Content-Length: %d" % declared if declared is not None else b"Connection: close"
        h.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n%s\r\n\r\n" % length
        )
        h.wfile.write(head)
        while hit.sent < FLOOD and not h.server.farm.stop.is_set():
            h.wfile.write(block)
            hit.sent += len(block)
        return False

    return route


def endless_chunked(name: str) -> Route:
    block = flood_block(name)
    chunk = b"%x\r\n%s\r\n" % (len(block), block)

    def route(h: Handler, hit: Hit) -> bool:
        hit.status = 200
        h.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Endless</title>'
        h.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
        while not h.server.farm.stop.is_set():
            h.wfile.write(chunk)
            hit.sent += len(block)
        return False

    return route


def gzip_stream(compressed: bytes, encoding: str = "gzip") -> Route:
    def route(h: Handler, hit: Hit) -> bool:
        hit.status = 200
        h.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Content-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (encoding.encode(), len(compressed))
        )
        for i in range(0, len(compressed), 65536):
            h.wfile.write(compressed[i : i + 65536])
            hit.sent += len(compressed[i : i + 65536])
        return True

    return route


def raw_head(*lines: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def raw_answer(data: bytes) -> Route:
    """Bytes written as they are: headers nobody should accept, a body cut short..."""

    def route(h: Handler, hit: Hit) -> bool:
        hit.status = int(data[9:12])
        h.wfile.write(data)
        hit.sent = len(data)
        return False

    return route


def churning(title: str, site: str, items: list[Item]) -> Route:
    """The same items under new guids on every fetch, and no validators."""

    def route(h: Handler, hit: Hit) -> bool:
        fresh = [dataclasses.replace(it, guid=f"churn-{uuid.uuid4()}") for it in items]
        body = rss(title, site, fresh).encode()
        return h.send(hit, 200, [("Content-Type", "application/rss+xml")], body)

    return route


# --- the cases -----------------------------------------------------------------------------


@dataclass
class Case:
    """One configured feed and what should become of it.

    expect: "good" (every item in ``items`` stored exactly once), "fail" (an error, not-a-feed
    or gone status with a message, and nothing of it stored), "lenient" (parsed despite its
    faults: the items in ``items`` stored) or "any" (only the bounds on time and memory).
    """

    name: str
    url: str
    expect: str
    items: list[Item] = field(default_factory=list)
    note: str = ""


def build(farm: Farm, now: datetime, goods: int = 40) -> list[Case]:
    rng = random.Random(2026)
    cases: list[Case] = []
    for i in range(goods):
        server = farm.server(f"127.0.1.{1 + i % 8}")
        site = f"http://outlet{i:02d}.example/"
        items = story_items(f"good{i:02d}", site, rng, now, 20)
        if i % 2:
            body = atom(f"Good outlet {i}", site, items).encode()
            route = static(body, "application/atom+xml")
        else:
            body = rss(f"Good outlet {i}", site, items).encode()
            route = static(body)
        cases.append(Case(f"good-{i:02d}", server.add(f"/feeds/{i}.xml", route), "good", items))

    hosts = (f"127.0.2.{n}" for n in range(1, 250))

    def add(name: str, route: Route, expect: str, items: list[Item] | None = None, note: str = ""):
        server = farm.server(next(hosts))
        cases.append(Case(name, server.add("/feed", route), expect, items or [], note))
        return server

    def good_doc(prefix: str, n: int = 20) -> tuple[list[Item], bytes]:
        site = f"http://{prefix}.example/"
        items = story_items(prefix, site, rng, now, n)
        return items, rss(prefix, site, items).encode()

    def marked(name: str, n: int = 5) -> bytes:
        return (
            '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>x</title>\n'
            + hostile_items(name, n)
            + "</channel></rss>\n"
        ).encode()

    # Good content, reached oddly.
    items, body = good_doc("deflated")
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    add(
        "deflate-raw",
        gzip_stream(deflate.compress(body) + deflate.flush(), "deflate"),
        "good",
        items,
    )

    items, body = good_doc("moved")
    server = farm.server(next(hosts))
    new = server.add("/new-home.xml", static(body))
    cases.append(Case("moved-301", server.add("/feed", redirect(301, new)), "good", items))

    items, body = good_doc("visiting")
    server = farm.server(next(hosts))
    there = server.add("/for-now.xml", static(body))
    cases.append(Case("temp-302", server.add("/feed", redirect(302, there)), "good", items))

    site = "http://authors.example/"
    items = story_items("author", site, rng, now, 10)
    for i, it in enumerate(items):
        tag = "author" if i % 2 == 0 else "dc:creator"
        it.extra = f"<{tag}>{'a' * 32768}</{tag}>"
    add("author-32k", static(rss("Authors", site, items).encode()), "good", items)

    # Good items beside fields that make a parser's time or memory grow faster than the bytes.
    site = "http://authorsplit.example/"
    items = story_items("authorsplit", site, rng, now, 10)
    chunk = "a" * 1000
    for i, it in enumerate(items):
        if i % 2 == 0:  # a comment every 1,000 bytes: feedparser joins the pieces
            it.extra = f"<author>{'<!-- -->'.join([chunk] * 33)}</author>"
        else:  # or CDATA sections end to end
            it.extra = (
                f"<dc:creator>{''.join(f'<![CDATA[{chunk}]]>' for _ in range(33))}</dc:creator>"
            )
    add(
        "author-32k-split",
        static(rss("Split authors", site, items).encode()),
        "good",
        items,
        note="32 KB author and dc:creator fields in 1,000-byte pieces (comments, CDATA sections)",
    )

    site = "http://attributes.example/"
    items = story_items("attributes", site, rng, now, 5)
    attributes = " ".join(f"a{i}='1'" for i in range(100_000))
    items[0].extra = f"<category {attributes}>news</category>"
    body = rss("Attributes", site, items).encode()
    add(
        "attributes-100k",
        static(body),
        "good",
        items,
        note=f"one element with 100,000 attributes ({len(body):,} bytes)",
    )

    site = "http://nested.example/"
    items = story_items("nested", site, rng, now, 5)
    items[0].summary = ""
    items[0].extra = f"<description><![CDATA[{'<div>' * 200_000}]]></description>"
    body = rss("Nested", site, items).encode()
    add(
        "nested-divs-200k",
        static(body),
        "good",
        items,
        note=f"a description of 200,000 nested <div> ({len(body):,} bytes)",
    )

    site = "http://soup.example/"
    items = story_items("soup", site, rng, now, 5)
    items[0].summary = ""
    items[0].extra = f"<description><![CDATA[{'<p>x</p>' * 1_800_000}]]></description>"
    body = rss("Soup", site, items).encode()
    add(
        "html-soup-15mb",
        static(body),
        "good",
        items,
        note=f"a description of 1,800,000 <p>x</p> ({len(body):,} bytes, under the cap)",
    )

    # Servers that must end as a failed feed.
    add("silent", silent, "fail")
    add("drip", drip(marked("drip")), "fail")
    add("flood-no-length", flood("floodnl", None), "fail")
    add("flood-length-huge", flood("floodhuge", 200 * 1000 * 1000), "fail")
    add(
        "flood-length-small",
        flood("floodsmall", 1_000_000),
        "any",
        note="Content-Length 1,000,000 then 50 MB: the first megabyte is a (truncated) feed",
    )
    add("gzip-bomb", gzip_stream(gzip_bomb()), "fail")
    corrupt = gzip.compress(marked("gzipcorrupt"))[:12] + random.Random(7).randbytes(8000)
    add("gzip-corrupt", gzip_stream(corrupt), "fail")
    server = add("redirect-loop", redirect(302, "/loop-b"), "fail")
    server.add("/loop-b", redirect(301, "/feed"))
    server = add("redirect-7-hops", redirect(302, "/hop/1"), "fail")
    for hop in range(1, 8):
        server.add(f"/hop/{hop}", redirect(302, f"/hop/{hop + 1}"))
    server.add("/hop/8", static(marked("sevenhops")))
    add("redirect-file", redirect(302, "file:///etc/passwd"), "fail")
    add("redirect-ftp", redirect(301, "ftp://127.0.0.1/feed.xml"), "fail")
    add("gone-410", status(410), "fail")
    add("429-seconds", status(429, ("Retry-After", "3600")), "fail")
    add("429-date", status(429, lambda: ("Retry-After", http_date(time.time() + 3600))), "fail")
    add("503-seconds", status(503, ("Retry-After", "3600")), "fail")
    add("503-date", status(503, lambda: ("Retry-After", http_date(time.time() + 3600))), "fail")
    add("503-garbage", status(503, ("Retry-After", "soon, maybe; 3600 ms?")), "fail")
    add("404", status(404), "fail")
    add("500", status(500), "fail")
    login = (
        b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=post>"
        b"<input name=user><input type=password name=pw><button>Sign in</button></form>"
        b"</body></html>"
    )
    add("html-login", static(login, "text/html; charset=utf-8", validators=False), "fail")
    add("endless-chunked", endless_chunked("endless"), "fail")
    rss_type = b"Content-Type: application/rss+xml"
    body = marked("headerflood")
    fillers = [b"X-Filler-%d: %d" % (i, i) for i in range(100_000)]
    length = b"Content-Length: %d" % len(body)
    add("100k-headers", raw_answer(raw_head(*fillers, rss_type, length) + body), "fail")
    body = marked("headerline")
    length = b"Content-Length: %d" % len(body)
    long_line = b"X-Long: " + b"a" * MiB
    add("1mb-header-line", raw_answer(raw_head(long_line, rss_type, length) + body), "fail")
    body = marked("cut", 400)
    length = b"Content-Length: %d" % len(body)
    add("cut-mid-body", raw_answer(raw_head(rss_type, length) + body[: len(body) // 4]), "fail")

    # Documents with bad parts: the good items should survive.
    site = "http://badbytes.example/"
    items = story_items("badbytes", site, rng, now, 20)
    items[3].title = items[3].title + " MARK3"
    body = rss("Bad bytes", site, items).encode().replace(b" MARK3", b" \xff\xfe\xc3(")
    items[3].title = ""  # its title cannot be known: any stored form will do
    add("invalid-utf8", static(body), "lenient", items)

    site = "http://charset.example/"
    items = story_items("charset", site, rng, now, 20)
    for it in items:
        it.title += " café über señor — “quoted”"
    body = rss("Charset", site, items).encode()
    add(
        "charset-conflict",
        static(body, "text/xml; charset=iso-8859-1"),
        "lenient",
        items,
        note="header says iso-8859-1, the XML declaration utf-8",
    )

    site = "http://churn.example/"
    items = story_items("churn", site, rng, now, 20)
    for it in items[10:]:
        it.link = None  # half only by their text
    add("guid-churn", churning("Churn", site, items), "lenient", [])
    cases[-1].items = items  # checked by title: the guids change

    site = "http://dupguid.example/"
    items = story_items("dupguid", site, rng, now, 20)
    items[6].guid = items[5].guid
    add("duplicate-guid", static(rss("Dup guid", site, items).encode()), "lenient", items)

    site = "http://samelink.example/"
    items = story_items("samelink", site, rng, now, 20)
    for it in items:
        it.link = f"{site}index.html"
    add("same-link", static(rss("Same link", site, items).encode()), "lenient", items)

    site = "http://future.example/"
    items = story_items("future", site, rng, now, 8)
    for it, raw in zip(
        items,
        (
            "Fri, 01 Jan 2999 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 -1200",
            "Sat, 01 Jan 2101 00:00:00 +0000",
            "Mon, 01 Jan 10000 00:00:00 GMT",
        ),
        strict=False,
    ):
        it.date_raw = raw
    add("far-future-date", static(rss("Future", site, items).encode()), "lenient", items)

    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    for name, doctype, note in (
        ("billion-laughs", f"<!DOCTYPE rss [{lol}]>\n", "entity declarations on one line"),
        (
            "billion-laughs-lines",
            "<!DOCTYPE rss [\n" + lol.replace("><", ">\n<") + "\n]>\n",
            "entity declarations one per line",
        ),
    ):
        site = f"http://{name}.example/"
        items = story_items(name, site, rng, now, 4)
        bomb = Item(f"{name}-bomb", "", raw_title="&lol9;", summary="", extra="")
        body = rss(name, site, [bomb, *items], doctype=doctype).encode()
        add(name, static(body), "lenient", items, note=note)

    for name, doctype in (
        ("xxe", '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'),
        ("xxe-lines", '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'),
    ):
        site = f"http://{name}.example/"
        items = story_items(name, site, rng, now, 4)
        leak = Item(
            f"{name}-leak", "", raw_title="Leak: &xxe;", extra="<description>&xxe;</description>"
        )
        body = rss(name, site, [leak, *items], doctype=doctype).encode()
        add(name, static(body), "lenient", items)

    site = "http://tiny.example/"
    parts, n = [], 0
    size = 0
    while size < 15_000_000 - 200:
        part = (
            f"<item><title>Tiny {n:06d}</title><guid>tiny-{n:06d}</guid>"
            f"<link>{site}{n}</link></item>\n"
        )
        parts.append(part)
        size += len(part)
        n += 1
    body = (rss("Tiny", site, []).replace("</channel>", "".join(parts) + "</channel>")).encode()
    add("tiny-items-15mb", static(body), "any", note=f"{n:,} items, {len(body):,} bytes")
    return cases


# --- running the CLI -----------------------------------------------------------------------


@dataclass
class PollRun:
    label: str
    seconds: float
    peak_tree: int  # bytes, summed over the process tree, sampled
    peak_one: int  # bytes, the largest single process (VmHWM, sampled)
    exit: int | None  # None: killed at the limit
    summary: str
    phases: str
    stderr: str
    finished: list[tuple[float, str]]  # (seconds from the start, feed URL), latest first


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        children[int(stat[stat.rfind(b")") + 2 :].split()[1])].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def memory(pid: int) -> tuple[int, int]:
    """(RSS now, peak RSS) of a process in bytes; (0, 0) once it is gone.

    The peak is VmHWM, which starts afresh at exec: wait4's ru_maxrss would carry over this
    process's own RSS at the fork.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except OSError:
        return 0, 0
    found = dict(re.findall(rb"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return int(found.get(b"VmRSS", 0)) * 1024, int(found.get(b"VmHWM", 0)) * 1024


def kill_group(pid: int) -> None:
    """SIGKILL to the process group the poll was started in (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_poll(
    config: Path, label: str, extra: tuple[str, ...], limit: float, project: Path
) -> PollRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    args = [sys.executable, "-c", "from cli import cli; cli()", "--config", str(config), "-v"]
    lines: list[tuple[float, str]] = []  # stderr, each line with when it came
    peak_tree = peak_one = 0
    done = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*args, "poll", *extra],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, so a stuck poll is killed whole
    )

    def sample() -> None:
        nonlocal peak_tree, peak_one
        while not done.wait(0.1):
            sizes = [memory(pid) for pid in process_tree(proc.pid)]
            peak_tree = max(peak_tree, sum(now for now, _ in sizes))
            peak_one = max(peak_one, *(peak for _, peak in sizes), 0)

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append((time.perf_counter() - started, raw.decode("utf-8", "replace")))

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, read)]
    for thread in threads:
        thread.start()
    killer = threading.Timer(limit, kill_group, (proc.pid,))
    killer.start()
    _, wait_status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    killer.cancel()
    done.set()
    kill_group(proc.pid)  # the fork server, if it outlived the poll
    for thread in threads:
        thread.join()
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    stderr = "".join(line for _, line in lines)
    (config.parent / f"poll-{label.split()[0]}.stderr").write_text(
        "".join(f"{at:8.2f} {line}" for at, line in lines), encoding="utf-8"
    )
    match = SUMMARY.search(stderr)
    fetched = re.search(r"fetched and stored \d+ feeds in ([\d.]+) s", stderr)
    total = re.search(r"the poll took ([\d.]+) s", stderr)
    phases = f"fetch+parse+store {fetched.group(1) if fetched else '(unfinished)'} s, " + (
        f"with clustering {total.group(1)} s" if total else "clustering unfinished"
    )
    # When each stored feed's outcome was logged (failures are all recorded at the end).
    finished = [
        (at, m.group(1))
        for at, line in lines
        if (
            m := re.match(
                r"INFO aggregator\.pipeline: (\S+?): (?:ok|not modified)",
                line,
            )
        )
    ]
    return PollRun(
        label,
        seconds,
        peak_tree,
        peak_one,
        proc.returncode if proc.returncode >= 0 else None,
        match.group(0) if match else "(no summary line)",
        phases,
        stderr,
        sorted(finished, reverse=True),
    )


# --- checks --------------------------------------------------------------------------------


@dataclass
class Db:
    feeds: dict[str, sqlite3.Row]  # by configured URL
    titles: Counter[str]  # every article's title
    items: dict[int, set[str]]  # item keys by feed id
    articles: dict[int, list[sqlite3.Row]]  # by the feed that first gave them
    raw: bytes  # the database files' bytes


def read_db(path: Path) -> Db:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    feeds = {r["url"]: r for r in db.execute("SELECT * FROM feeds")}
    articles: dict[int, list[sqlite3.Row]] = defaultdict(list)
    titles: Counter[str] = Counter()
    for r in db.execute("SELECT id, feed_id, guid, title, published, first_seen FROM articles"):
        articles[r["feed_id"]].append(r)
        titles[r["title"]] += 1
    items: dict[int, set[str]] = defaultdict(set)
    for r in db.execute("SELECT feed_id, item_key FROM items"):
        items[r["feed_id"]].add(r["item_key"])
    db.close()
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return Db(feeds, titles, items, articles, raw)


Check = tuple[str, bool, str]


def checks(
    farm: Farm, cases: list[Case], db: Db, polls: list[PollRun], timeout: float
) -> list[Check]:
    """Every check as (what, held, detail); those whose feeds were skipped are left out."""
    out: list[Check] = []
    by_name = {c.name: c for c in cases}

    def check(what: str, held: bool, detail: str) -> None:
        out.append((what, held, detail))

    def has(*names: str) -> bool:
        return all(n in by_name for n in names)

    def feed(name: str) -> sqlite3.Row:
        return db.feeds[by_name[name].url]

    def stored(name: str) -> list[sqlite3.Row]:
        return db.articles.get(feed(name)["id"], [])

    for run in polls:
        peak = max(run.peak_tree, run.peak_one)
        check(
            f"{run.label}: exits 0",
            run.exit == 0,
            "killed" if run.exit is None else f"exit {run.exit}",
        )
        check(
            f"{run.label}: within 2x timeout ({2 * timeout:g} s)",
            run.seconds <= 2 * timeout,
            f"{run.seconds:.1f} s",
        )
        check(
            f"{run.label}: under 1 GiB",
            peak < 1024 * MiB,
            f"tree {run.peak_tree / MiB:,.0f} MiB, largest process {run.peak_one / MiB:,.0f} MiB",
        )

    missing, twice = [], []
    for case in (c for c in cases if c.expect == "good"):
        keys = db.items.get(feed(case.name)["id"], set())
        for it in case.items:
            if f"guid:{it.guid}" not in keys or db.titles[it.title] == 0:
                missing.append(f"{case.name}/{it.guid}")
            elif db.titles[it.title] > 1:
                twice.append(f"{case.name}/{it.guid}")
    good = sum(len(c.items) for c in cases if c.expect == "good")
    check(
        f"every good item stored exactly once ({good} items)",
        not missing and not twice,
        f"missing {len(missing)} {missing[:6]}; more than once {len(twice)} {twice[:6]}",
    )

    lenient = []
    for case in (c for c in cases if c.expect == "lenient"):
        keys = db.items.get(feed(case.name)["id"], set())
        if case.name == "guid-churn":  # by title: its guids change
            lost = [it.guid for it in case.items if db.titles[it.title] != 1]
        else:
            lost = sorted({it.guid for it in case.items if f"guid:{it.guid}" not in keys})
        if lost:
            lenient.append(f"{case.name} ({feed(case.name)['status']}): {len(lost)} missing")
    check(
        "good items of faulty documents stored (bad bytes, charset, churn, entities...)",
        not lenient,
        "; ".join(lenient) or "all stored",
    )

    passwd = Path("/etc/passwd").read_text(errors="replace").splitlines()
    leaked = [line[:40] for line in passwd if len(line) > 12 and line.encode() in db.raw]
    check("nothing of /etc/passwd stored", not leaked, f"found {leaked[:3]}" if leaked else "none")

    if has("gone-410"):
        hits = farm.hits_of(by_name["gone-410"].url)
        check(
            "410: one request in all, marked gone",
            len(hits) == 1 and feed("gone-410")["gone"] == 1,
            f"{len(hits)} requests, gone={feed('gone-410')['gone']}",
        )

    later = []
    for name in ("429-seconds", "429-date", "503-seconds", "503-date"):
        if not has(name):
            continue
        hits = farm.hits_of(by_name[name].url)
        until = feed(name)["retry_after_at"]
        kept = (
            until is not None
            and hits
            and abs(datetime.fromisoformat(until).timestamp() - hits[0].started - 3600) < 60
        )
        if len(hits) != 1 or not kept:
            later.append(f"{name}: {len(hits)} requests in all, retry_after_at {until}")
    check(
        "Retry-After (seconds, date): kept as an hour, no request in polls 2 and 3",
        not later,
        "; ".join(later) or "kept",
    )
    if has("503-garbage"):
        garbage = farm.hits_of(by_name["503-garbage"].url, 2)
        state = feed("503-garbage")["status"]
        check(
            "Retry-After garbage: an error, backed off (no request in poll 2)",
            not garbage and state == "error",
            f"{len(garbage)} requests in poll 2, status {state}",
        )
    second = sorted({h.base + h.path for h in farm.hits if h.poll == 2})
    check("poll 2: nothing is due, no request at all", not second, f"{second[:5]}")

    if has("moved-301"):
        new_url = by_name["moved-301"].url.replace("/feed", "/new-home.xml")
        old3 = farm.hits_of(by_name["moved-301"].url, 3)
        new3 = farm.hits_of(new_url, 3)
        effective = feed("moved-301")["effective_url"]
        check(
            "301: kept, poll 3 fetched from the new URL only",
            not old3 and len(new3) == 1 and effective == new_url,
            f"old URL {len(old3)}, new URL {len(new3)} requests, effective_url {effective}",
        )
    if has("temp-302"):
        temp3 = farm.hits_of(by_name["temp-302"].url, 3)
        effective = feed("temp-302")["effective_url"]
        check(
            "302: not kept, poll 3 asked the old URL",
            len(temp3) == 1 and effective is None,
            f"{len(temp3)} requests to the old URL, effective_url {effective}",
        )

    goods = [c for c in cases if c.name.startswith("good-")]
    asked = [h for c in goods for h in farm.hits_of(c.url, 3)]
    conditional = sum("if-none-match" in h.headers for h in asked)
    not_modified = sum(h.status == 304 for h in asked)
    statuses = Counter(feed(c.name)["status"] for c in goods)
    check(
        f"poll 3: conditional requests to the {len(goods)} good feeds, each a 304",
        conditional == not_modified == len(asked) == len(goods)
        and statuses["not modified"] == len(goods),
        f"{len(asked)} requests, {conditional} with If-None-Match, {not_modified} answered 304,"
        f" statuses {dict(statuses)}",
    )

    wrong = []
    for case in (c for c in cases if c.expect == "fail"):
        row = feed(case.name)
        n = len(stored(case.name))
        if row["status"] not in ("error", "not a feed", "gone") or not row["last_error"] or n:
            wrong.append(f"{case.name}: {row['status']}, {n} articles")
    check(
        "failing servers: error, not a feed or gone, with a message, nothing stored",
        not wrong,
        "; ".join(wrong) or f"all {sum(c.expect == 'fail' for c in cases)} as they should",
    )
    leaks = [t for t in db.titles if HOSTILE in t]
    allowed = sum("floodsmall" in t for t in leaks)
    check(
        f"no {HOSTILE} title stored from a failing server",
        len(leaks) == allowed,
        f"{len(leaks) - allowed} (and {allowed} from flood-length-small, within its"
        " Content-Length, which may be stored)",
    )

    if has("guid-churn"):
        rows = stored("guid-churn")
        check(
            "guid churn: no article twice after the re-poll",
            len(rows) == 20,
            f"{len(rows)} articles, {len(db.items.get(feed('guid-churn')['id'], ()))} item rows",
        )
    if has("far-future-date"):
        rows = stored("far-future-date")
        late = [
            r
            for r in rows
            if datetime.fromisoformat(r["published"])
            > datetime.fromisoformat(r["first_seen"]) + timedelta(minutes=10)
        ]
        check(
            "far-future dates not stored as such",
            bool(rows) and not late,
            f"{len(rows)} articles, {len(late)} dated in the future",
        )
    return out


# --- one run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    polls: list[PollRun]
    checks: list[Check]
    table: list[tuple[str, str, str, int, str]]
    notes: list[str]


def one_run(args: argparse.Namespace, workdir: Path) -> RunResult:
    farm = Farm()
    try:
        started = time.perf_counter()
        cases = build(farm, datetime.now(UTC))
        names = {c.name for c in cases}
        unknown = (args.skip | args.only) - names
        if unknown:
            sys.exit(f"--skip/--only: no such feeds: {', '.join(sorted(unknown))}")
        cases = [
            c
            for c in cases
            if c.name not in args.skip
            and (not args.only or c.name in args.only or c.name.startswith("good-"))
        ]
        print(
            f"farm: {len(cases)} feeds on {len({c.url.split(':')[1] for c in cases})} addresses,"
            f" built in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        config = workdir / "config.yaml"
        feeds = "\n".join(f"  - {c.url}" for c in cases)
        config.write_text(
            f"database: {workdir / 'agg.db'}\nfeeds:\n{feeds}\n"
            f"polling:\n  timeout: {args.timeout:g}\n",
            encoding="utf-8",
        )
        polls = []
        for n, (label, extra) in enumerate(POLLS, start=1):
            farm.poll = n
            run = run_poll(config, label, extra, args.limit, args.project)
            polls.append(run)
            ended = "killed" if run.exit is None else f"exit {run.exit}"
            print(
                f"  {label:<13} {run.seconds:7.1f} s  tree {run.peak_tree / MiB:6,.0f} MiB"
                f"  largest {run.peak_one / MiB:6,.0f} MiB  {ended}"
                f"  {run.summary}"
                f"  [{run.phases}]",
                flush=True,
            )
            if run.exit != 0:
                print("    stderr tail: " + run.stderr.strip()[-1500:].replace("\n", "\n    "))
            if run.seconds > 2 * args.timeout:
                name_of = {c.url: c.name for c in cases}
                print(
                    "    last feeds stored (seconds from the start): "
                    + ", ".join(f"{name_of.get(url, url)} {at:.1f}" for at, url in run.finished[:5])
                )
        db = read_db(workdir / "agg.db")
        result_checks = checks(farm, cases, db, polls, args.timeout)
        table = []
        for case in cases:
            if case.name.startswith("good-"):
                continue
            row = db.feeds[case.url]
            stored = len(db.articles.get(row["id"], []))
            message = " ".join((row["last_error"] or "").split())[:100]
            table.append((case.name, case.expect, row["status"], stored, message))
        notes = []
        for case in cases:
            if case.note:
                notes.append(f"{case.name}: {case.note}")
        charset = [c for c in cases if c.name == "charset-conflict"]
        if charset and (rows := db.articles.get(db.feeds[charset[0].url]["id"])):
            notes.append(f"charset-conflict: a stored title reads {rows[0]['title'][-40:]!r}")
        size = (workdir / "agg.db").stat().st_size
        notes.append(f"database: {size / MiB:,.1f} MiB, {sum(db.titles.values()):,} articles")
        return RunResult(polls, result_checks, table, notes)
    finally:
        farm.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="polls against a farm of hostile feed servers")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0, help="polling.timeout, in seconds")
    ap.add_argument("--limit", type=float, default=600.0, help="kill a poll after this long")
    names = lambda v: {name.strip() for name in v.split(",") if name.strip()}  # noqa: E731
    ap.add_argument(
        "--skip",
        type=names,
        default=set(),
        help="feeds to leave out, by name, comma-separated (e.g. tiny-items-15mb)",
    )
    ap.add_argument(
        "--only",
        type=names,
        default=set(),
        help="the 40 good feeds and only these others, by name, comma-separated",
    )
    ap.add_argument("--keep", type=Path, help="keep the database, config and logs here")
    ap.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        help="the checkout whose cli.py and aggregator/ are run (default: this one), to compare"
        " with another revision, e.g. `git archive HEAD | tar -x -C /tmp/head`",
    )
    args = ap.parse_args()
    results = []
    for n in range(args.runs):
        print(f"run {n + 1} of {args.runs}", flush=True)
        with tempfile.TemporaryDirectory(prefix="hostile-farm-") as tmp:
            results.append(one_run(args, Path(tmp)))
            if args.keep:
                shutil.copytree(tmp, args.keep / f"run{n + 1}", dirs_exist_ok=True)

    last = results[-1]
    print(f"\nfeeds other than the 40 good ones (last run; polling.timeout {args.timeout:g} s):")
    print(f"  {'feed':<22} {'expect':<8} {'status':<13} {'stored':>6}  message")
    for name, expect, state, stored, message in last.table:
        print(f"  {name:<22} {expect:<8} {state:<13} {stored:>6}  {message}")
    for note in last.notes:
        print(f"  note: {note}")

    print(f"\nfigures ({args.runs} run{'s' if args.runs > 1 else ''}, median):")
    for i, (label, _) in enumerate(POLLS):
        runs = [r.polls[i] for r in results]
        print(
            f"  {label:<13} wall {statistics.median(r.seconds for r in runs):7.1f} s"
            f"  peak tree RSS {statistics.median(r.peak_tree for r in runs) / MiB:6,.0f} MiB"
            f"  largest process {statistics.median(r.peak_one for r in runs) / MiB:6,.0f} MiB"
            f"  runs {[round(r.seconds, 1) for r in runs]}"
        )

    print("\nchecks (PASS only when it held in every run):")
    failed = 0
    for i, (name, _, _) in enumerate(last.checks):
        oks = [r.checks[i][1] for r in results]
        failed += not all(oks)
        detail = next((r.checks[i][2] for r in results if not r.checks[i][1]), last.checks[i][2])
        print(f"  {'PASS' if all(oks) else 'FAIL'}  {name}: {detail}")
    print(f"\n{failed} of {len(last.checks)} checks failed")


if __name__ == "__main__":
    main()
