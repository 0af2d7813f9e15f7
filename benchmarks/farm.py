"""A feed farm on loopback: the dev story data replayed as one RSS feed per outlet.

Each HOSTNAME in ../shared/data/uci-news-stories-dev.csv becomes a feed (1,241 of them) with that
outlet's headlines. Every feed has its own loopback address (127.0.x.y, all on one port), so a
client's per-host limit sees 1,241 hosts, as it would on the internet.

The server is asyncio HTTP/1.1 with keep-alive. Every response waits ``--latency`` seconds first.
It sends an ETag and Last-Modified and answers 304 to a request that sends either back.
``GET /_stats`` counts requests, conditional requests and 304s; ``POST /_reset`` zeroes them.

    python benchmarks/farm.py --latency 0.05 --config /tmp/farm.yaml

writes a config listing the feeds, then prints ``ready <port>`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import socket
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/uci-news-stories-dev.csv"


@dataclass(frozen=True)
class Feed:
    host: str  # the outlet's hostname, from the data
    address: str  # the loopback address it is served on
    body: bytes
    etag: str
    last_modified: str


def build_feeds(data: Path = DATA) -> list[Feed]:
    """One RSS document per outlet, items newest first, each at its own loopback address."""
    by_host: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    with data.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_host[row["HOSTNAME"]].append(row)
    feeds = []
    for i, host in enumerate(sorted(by_host)):
        rows = sorted(by_host[host], key=lambda r: int(r["TIMESTAMP"]), reverse=True)
        body = _rss(host, rows)
        newest = datetime.fromtimestamp(int(rows[0]["TIMESTAMP"]) / 1000, tz=UTC)
        feeds.append(
            Feed(
                host=host,
                address=f"127.0.{1 + i // 250}.{1 + i % 250}",
                body=body,
                etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
                last_modified=format_datetime(newest, usegmt=True),
            )
        )
    return feeds


def _rss(host: str, rows: list[dict[str, str]]) -> bytes:
    items = []
    for r in rows:
        when = datetime.fromtimestamp(int(r["TIMESTAMP"]) / 1000, tz=UTC)
        items.append(
            "<item>"
            f"<title>{escape(r['TITLE'])}</title>"
            f"<link>{escape(r['URL'])}</link>"
            f'<guid isPermaLink="false">uci-{escape(r["ID"])}</guid>'
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
            "</item>"
        )
    publisher = escape(rows[0]["PUBLISHER"] or host)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{publisher}</title><link>http://{escape(host)}/</link>"
        f"<description>Headlines from {publisher}</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class Farm:
    def __init__(self, feeds: list[Feed], latency: float) -> None:
        self.latency = latency
        self.by_address = {f.address: f for f in feeds}
        self.stats = {"requests": 0, "conditional": 0, "not_modified": 0, "bytes": 0}
        self.in_flight: defaultdict[str, int] = defaultdict(int)
        self.max_in_flight_per_host = 0
        self.max_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                status, extra, body = await self.respond(address, method, path, headers)
                out = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra, "", ""]
                writer.write("\r\n".join(out).encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def respond(
        self, address: str, method: str, path: str, headers: dict[str, str]
    ) -> tuple[str, list[str], bytes]:
        if path == "/_stats":
            stats = {
                **self.stats,
                "max_in_flight": self.max_in_flight,
                "max_in_flight_per_host": self.max_in_flight_per_host,
            }
            return "200 OK", ["Content-Type: application/json"], json.dumps(stats).encode()
        if path == "/_reset":
            for k in self.stats:
                self.stats[k] = 0
            self.max_in_flight = self.max_in_flight_per_host = 0
            return "200 OK", [], b""
        feed = self.by_address.get(address)
        if feed is None or path != f"/{feed.host}/feed.xml":
            return "404 Not Found", [], b"not here\n"
        self.stats["requests"] += 1
        self.in_flight[address] += 1
        self.max_in_flight_per_host = max(self.max_in_flight_per_host, self.in_flight[address])
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight[address] -= 1
        validators = [f"ETag: {feed.etag}", f"Last-Modified: {feed.last_modified}"]
        inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
        if inm or ims:
            self.stats["conditional"] += 1
        if (inm and inm == feed.etag) or (not inm and ims == feed.last_modified):
            self.stats["not_modified"] += 1
            return "304 Not Modified", validators, b""
        self.stats["bytes"] += len(feed.body)
        return "200 OK", ["Content-Type: application/rss+xml", *validators], feed.body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def feed_urls(feeds: list[Feed], port: int) -> list[str]:
    return [f"http://{f.address}:{port}/{f.host}/feed.xml" for f in feeds]


async def serve(feeds: list[Feed], latency: float, port: int, ready: str) -> None:
    farm = Farm(feeds, latency)
    hosts = ["127.0.0.1", *farm.by_address]
    server = await asyncio.start_server(farm.handle, host=hosts, port=port, backlog=1024)
    print(ready, flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds before each response")
    ap.add_argument("--port", type=int, default=0, help="0: a free one")
    ap.add_argument("--config", type=Path, help="write an aggregator config listing the feeds")
    ap.add_argument("--urls", type=Path, help="write the feed URLs, one a line")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"no story data at {args.data}: the farm replays ../shared")
    feeds = build_feeds(args.data)
    port = args.port or free_port()
    urls = feed_urls(feeds, port)
    if args.urls:
        args.urls.write_text("\n".join(urls) + "\n")
    if args.config:
        lines = ["feeds:", *(f"  - {u}" for u in urls)]
        args.config.write_text("\n".join(lines) + "\n")
    asyncio.run(serve(feeds, args.latency, port, f"ready {port} {len(feeds)}"))


if __name__ == "__main__":
    main()
