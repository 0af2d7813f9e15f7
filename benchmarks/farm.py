"""A feed farm on loopback: the dev story data replayed as one RSS feed per outlet.

Each HOSTNAME in ../shared/data/uci-news-stories-dev.csv becomes a feed (1,241 of them) with that
outlet's headlines. Every feed has its own loopback address (127.0.x.y, all on one port), so a
client's per-host limit sees 1,241 hosts, as it would on the internet.

The server is asyncio HTTP/1.1 with keep-alive. Every response waits ``--latency`` seconds first.
It sends an ETag and Last-Modified and answers 304 to a request that sends either back.
``GET /_stats`` counts requests, conditional requests and 304s; ``POST /_reset`` zeroes them.

    python benchmarks/farm.py --latency 0.05 --config /tmp/farm.yaml

writes a config listing the feeds, then prints ``ready <port>`` and serves until killed.

Syndication (``--syndicate FRACTION``, default 0: the feeds are exactly the data). That share of
the dev items, drawn at random (``--seed``), is republished by one other outlet, a fifth of them
by two, the outlets drawn among all other hosts. A copy sits in the republisher's feed among its
own items and gets:

- its own guid (``syn-<12 hex digits>``; the data's items keep ``uci-<ID>``) and a pubDate
  5 minutes to 6 hours after the original's;
- a link, one of: the original URL with 1-3 tracking parameters added (utm_source, utm_medium,
  utm_campaign, fbclid, ncid, ocid, mc_cid; sometimes a ``#`` fragment too) 45 %; an AMP form
  of it (``?amp``, ``?amp=1``, a ``/amp`` path, or an ``amp.`` host for ``www.``) 10 %; a new
  URL on the republisher's host, ``http://<host>/wire/<slug-of-the-title>-<digits>`` 45 %;
- a headline: a prefix ("UPDATE 1-", "UPDATE 2-", "EXCLUSIVE-", "BREAKING: ", "RPT-") 30 %, a
  suffix (" - Reuters", " | <the republisher's name>", " — AP") 30 %, both 30 %, unchanged 10 %;
  and in ``--edits`` of the copies (default none: the issue's replay has prefixes, suffixes,
  links and times, not edits), before that, one small edit: "says" -> "said" or a number written
  another way ("$1.5 billion" -> "$1.5bn", "10%" -> "10 percent", "3" -> "three",
  "25000" -> "25,000") where the headline allows (7 in 10 of those), else one word dropped
  (never the first).

With ``--config`` (or ``--urls``), the ground truth is written beside it as
``<name>.truth.json`` (or ``--truth PATH``): ``{copy guid: original guid}``. ``build_farm``
gives the same copies, with what was done to each, to a benchmark that imports this module.

    python benchmarks/farm.py --latency 0 --config /tmp/farm.yaml --syndicate 0.10 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import random
import re
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/uci-news-stories-dev.csv"


@dataclass(frozen=True)
class Feed:
    host: str  # the outlet's hostname, from the data
    address: str  # the loopback address it is served on
    body: bytes
    etag: str
    last_modified: str


@dataclass(frozen=True)
class Copy:
    """One syndicated copy of a dev item, in another outlet's feed."""

    guid: str
    original: str  # the original's guid, uci-<ID>
    host: str  # the republishing outlet
    original_host: str
    title: str
    url: str
    timestamp: int  # milliseconds, as the data's TIMESTAMP
    url_kind: str  # tracking | amp | new
    title_kind: str  # prefix | suffix | both | none
    edit: str  # none | drop | said | number


def read_rows(data: Path = DATA) -> list[dict[str, str]]:
    with data.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def build_feeds(
    data: Path = DATA, syndicate: float = 0.0, seed: int = 0, edits: float = 0.0
) -> list[Feed]:
    """One RSS document per outlet, items newest first, each at its own loopback address."""
    return build_farm(data, syndicate, seed, edits)[0]


def build_farm(
    data: Path = DATA, syndicate: float = 0.0, seed: int = 0, edits: float = 0.0
) -> tuple[list[Feed], list[Copy]]:
    """The feeds, and the copies syndicated into them (none when ``syndicate`` is 0)."""
    rows = read_rows(data)
    by_host: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_host[row["HOSTNAME"]].append(row)
    copies = make_copies(rows, syndicate, seed, edits) if syndicate > 0 else []
    copies_by_host: defaultdict[str, list[Copy]] = defaultdict(list)
    for c in copies:
        copies_by_host[c.host].append(c)
    feeds = []
    for i, host in enumerate(sorted(by_host)):
        items = [
            (r["TITLE"], r["URL"], f"uci-{r['ID']}", int(r["TIMESTAMP"])) for r in by_host[host]
        ]
        items += [(c.title, c.url, c.guid, c.timestamp) for c in copies_by_host[host]]
        items.sort(key=lambda item: item[3], reverse=True)
        own = sorted(by_host[host], key=lambda r: int(r["TIMESTAMP"]), reverse=True)
        body = _rss(host, own[0]["PUBLISHER"] or host, items)
        newest = datetime.fromtimestamp(items[0][3] / 1000, tz=UTC)
        feeds.append(
            Feed(
                host=host,
                address=f"127.0.{1 + i // 250}.{1 + i % 250}",
                body=body,
                etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
                last_modified=format_datetime(newest, usegmt=True),
            )
        )
    return feeds, copies


def _rss(host: str, publisher: str, items: list[tuple[str, str, str, int]]) -> bytes:
    out = []
    for title, url, guid, timestamp in items:
        when = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
        out.append(
            "<item>"
            f"<title>{escape(title)}</title>"
            f"<link>{escape(url)}</link>"
            f'<guid isPermaLink="false">{escape(guid)}</guid>'
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
            "</item>"
        )
    publisher = escape(publisher)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{publisher}</title><link>http://{escape(host)}/</link>"
        f"<description>Headlines from {publisher}</description>" + "".join(out) + "</channel></rss>"
    ).encode()


# --- syndication ------------------------------------------------------------------------------

PREFIXES = ("UPDATE 1-", "UPDATE 2-", "EXCLUSIVE-", "BREAKING: ", "RPT-")
TRACKING = (
    ("utm_source", ("rss", "feedburner", "twitter", "yahoo", "newsletter")),
    ("utm_medium", ("rss", "social", "email", "referral")),
    ("utm_campaign", ("wire", "morning-brief", "syndication")),
    ("fbclid", ()),
    ("ncid", ("rss", "yahoo", "txtlnkusaolp00000616")),
    ("ocid", ("msnbc", "socialflow_twitter")),
    ("mc_cid", ()),
)
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def make_copies(
    rows: Sequence[dict[str, str]], fraction: float, seed: int, edits: float = 0.0
) -> list[Copy]:
    """About ``fraction`` of ``rows`` republished by one (a fifth: two) other outlets."""
    rng = random.Random(seed)
    publishers: dict[str, str] = {}
    for r in rows:
        publishers.setdefault(r["HOSTNAME"], r["PUBLISHER"] or r["HOSTNAME"])
    hosts = sorted(publishers)
    chosen = rng.sample(list(rows), min(len(rows), round(fraction * len(rows))))
    chosen.sort(key=lambda r: int(r["ID"]))
    copies = []
    for row in chosen:
        others: set[str] = set()
        while len(others) < (2 if rng.random() < 0.2 else 1):
            host = rng.choice(hosts)
            if host != row["HOSTNAME"]:
                others.add(host)
        for host in sorted(others):
            copies.append(_copy(rng, row, host, publishers[host], edits))
    return copies


def _copy(rng: random.Random, row: dict[str, str], host: str, publisher: str, edits: float) -> Copy:
    roll = rng.random()
    if roll < 0.45:
        url_kind, url = "tracking", _with_tracking(rng, row["URL"])
    elif roll < 0.55:
        url_kind, url = "amp", _amp(rng, row["URL"])
    else:
        slug = "-".join(re.findall(r"[a-z0-9]+", row["TITLE"].lower())[:8]) or "story"
        url_kind, url = "new", f"http://{host}/wire/{slug}-{rng.randrange(10**5, 10**6)}"
    title, edit = row["TITLE"].strip(), "none"
    if rng.random() < edits:
        title, edit = _edit(rng, title)
    roll = rng.random()
    title_kind = (
        "prefix" if roll < 0.3 else "suffix" if roll < 0.6 else "both" if roll < 0.9 else "none"
    )
    if title_kind in ("prefix", "both"):
        title = rng.choice(PREFIXES) + title
    if title_kind in ("suffix", "both"):
        title += rng.choice((" - Reuters", f" | {publisher}", " \u2014 AP"))
    return Copy(
        guid=f"syn-{rng.getrandbits(48):012x}",
        original=f"uci-{row['ID']}",
        host=host,
        original_host=row["HOSTNAME"],
        title=title,
        url=url,
        timestamp=int(row["TIMESTAMP"]) + rng.randrange(5 * 60_000, 6 * 3_600_000),
        url_kind=url_kind,
        title_kind=title_kind,
        edit=edit,
    )


def _with_tracking(rng: random.Random, url: str) -> str:
    parts = urlsplit(url)
    params = []
    for name, values in rng.sample(TRACKING, rng.randint(1, 3)):
        value = rng.choice(values) if values else f"{rng.getrandbits(64):016x}"
        params.append(f"{name}={value}")
    query = "&".join([parts.query, *params] if parts.query else params)
    fragment = rng.choice(("", "", "", "ref=rss", "comments"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment or parts.fragment))


def _amp(rng: random.Random, url: str) -> str:
    parts = urlsplit(url)
    how = rng.choice(("query", "query1", "path", "host"))
    if how == "host" and parts.netloc.startswith("www."):
        return urlunsplit(parts._replace(netloc="amp." + parts.netloc[4:]))
    if how == "path" and not parts.query:
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/amp"))
    extra = "amp=1" if how == "query1" else "amp"
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def _edit(rng: random.Random, title: str) -> tuple[str, str]:
    """One small edit of a headline, and its kind; ``(title, "none")`` if none applies."""
    words = title.split()
    droppable = [i for i, w in enumerate(words) if i and re.search(r"\w", w)]
    edits = {
        "drop": len(words) >= 4 and droppable,
        "said": re.search(r"\b[Ss]ays\b", title),
        "number": _renumber(random.Random(0), title) != title,
    }
    # The rarer edits first where they apply: nearly every headline has a word to drop.
    kind = next((k for k in ("said", "number") if edits[k] and rng.random() < 0.7), None)
    kind = kind or ("drop" if edits["drop"] else "none")
    if kind == "drop":
        del words[rng.choice(droppable)]
        return " ".join(words), kind
    if kind == "said":
        return re.sub(r"\b([Ss])ays\b", lambda m: m[1] + "aid", title, count=1), kind
    if kind == "number":
        return _renumber(rng, title), kind
    return title, kind


def _renumber(rng: random.Random, title: str) -> str:
    """``title`` with one number written another way; as it is if it has none to rewrite."""
    rules = [
        (r"(\d+(?:\.\d+)?) [Bb]illion\b", lambda m: f"{m[1]}bn"),
        (r"(\d+(?:\.\d+)?) [Mm]illion\b", lambda m: f"{m[1]}m"),
        (r"(\d+(?:\.\d+)?)%", lambda m: f"{m[1]} percent"),
        (r"(\d+(?:\.\d+)?) (?:percent|per cent)\b", lambda m: f"{m[1]}%"),
        (r"\b(\d{1,3})(\d{3})\b", lambda m: f"{m[1]},{m[2]}" if not _year(m[0]) else m[0]),
        (r"(?<![\d.,$:])\b([1-9])\b(?![\d.,:%])", lambda m: _NUMBER_WORDS[int(m[1])]),
    ]
    rng.shuffle(rules)
    for pattern, rewrite in rules:
        for match in re.finditer(pattern, title):
            if (new := rewrite(match)) != match[0]:
                return title[: match.start()] + new + title[match.end() :]
    return title


def _year(number: str) -> bool:
    return 1900 <= int(number) <= 2099


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


def spawn(*options: str) -> tuple[subprocess.Popen[str], int]:
    """Start this farm in a child process with ``options``; wait for ``ready <port>``."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        sys.exit("the farm did not start")
    return proc, int(line[1])


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
    ap.add_argument(
        "--syndicate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of the items republished in other outlets' feeds (0: none)",
    )
    ap.add_argument("--seed", type=int, default=1, help="of the syndication's random choices")
    ap.add_argument(
        "--edits", type=float, default=0.0, metavar="FRACTION", help="share of copies edited"
    )
    ap.add_argument(
        "--truth", type=Path, help="where to write {copy guid: original guid} [<config>.truth.json]"
    )
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"no story data at {args.data}: the farm replays ../shared")
    if not 0 <= args.syndicate <= 1:
        sys.exit("--syndicate: a fraction from 0 to 1")
    feeds, copies = build_farm(args.data, args.syndicate, args.seed, args.edits)
    port = args.port or free_port()
    urls = feed_urls(feeds, port)
    if args.urls:
        args.urls.write_text("\n".join(urls) + "\n")
    if args.config:
        lines = ["feeds:", *(f"  - {u}" for u in urls)]
        args.config.write_text("\n".join(lines) + "\n")
    beside = args.config or args.urls
    truth = args.truth or (beside.with_name(beside.stem + ".truth.json") if beside else None)
    if copies and truth:
        truth.write_text(json.dumps({c.guid: c.original for c in copies}, indent=0) + "\n")
    if copies:
        print(f"syndicated {len(copies):,} copies; truth in {truth}", file=sys.stderr, flush=True)
    asyncio.run(serve(feeds, args.latency, port, f"ready {port} {len(feeds)}"))


if __name__ == "__main__":
    main()
