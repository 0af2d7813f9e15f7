"""Shared fixtures: a real HTTP feed server on 127.0.0.1, config files, the CLI runner."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.config import Config, load_config
from aggregator.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "examples"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data sits beside the project (../shared)")
    return path


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # when set, If-None-Match gets a 304
    last_modified: str | None = None  # when set, an equal If-Modified-Since gets a 304
    gzip: bool = False
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between bytes of the body
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float
    client_port: int = 0
    finished: float = 0.0  # when the answer was sent (0 while in flight)


class FeedServer:
    """A threaded HTTP server on a free loopback port, serving Routes and logging requests.

    ``host`` is any address of 127.0.0.0/8 (all loopback on Linux), so a test can run a second
    server that counts as another host.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                request = Request(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.time(),
                    self.client_address[1],
                )
                with server._lock:
                    server.requests.append(request)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1
                        request.finished = time.time()

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route | None = None, **kwargs: object) -> str:
        self.routes[path] = route or Route(**kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(h.path)
        if route is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if route.delay:
            time.sleep(route.delay)
        if (route.etag and h.headers.get("If-None-Match") == route.etag) or (
            route.last_modified and h.headers.get("If-Modified-Since") == route.last_modified
        ):
            h.send_response(304)
            if route.etag:
                h.send_header("ETag", route.etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        h.send_response(route.status)
        for name, value in route.headers.items():
            h.send_header(name, value)
        if route.etag:
            h.send_header("ETag", route.etag)
        if route.last_modified:
            h.send_header("Last-Modified", route.last_modified)
        if route.gzip:
            h.send_header("Content-Encoding", "gzip")
        if not route.length:
            h.send_header("Connection", "close")
            h.close_connection = True
        elif "Content-Length" not in route.headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if route.drip:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(route.drip)
        else:
            h.wfile.write(body)


@contextlib.contextmanager
def serving(host: str = "127.0.0.1") -> Iterator[FeedServer]:
    """A FeedServer on ``host`` (any address of 127.0.0.0/8), shut down afterwards."""
    server = FeedServer(host=host)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serving() as server:
        yield server


def rss(title: str, items: list[dict[str, str]], *, link: str = "https://outlet.example/") -> bytes:
    """A small RSS 2.0 document; each item a dict of guid/link/title/description/pubDate."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{title}</title><link>{link}</link><description>test</description>",
    ]
    for item in items:
        parts.append("<item>")
        for key, value in item.items():
            parts.append(f"<{key}>{value}</{key}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config.yaml in tmp_path with the given feeds and extra YAML; return its path."""

    def write(feeds: list[str], extra: str = "") -> Path:
        lines = ["database: agg.db", "feeds:"]
        lines += [f"  - {url}" for url in feeds] or ["  []"]
        path = tmp_path / "config.yaml"
        path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
        return path

    return write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


OFFLINE = EXAMPLES / "offline.yaml"


def invoke(runner: CliRunner, *args: str) -> Result:
    from cli import cli

    return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def offline_db(tmp_path: Path, runner: CliRunner) -> Path:
    """The offline example, run once into a database of its own."""
    db = tmp_path / "offline.db"
    result = invoke(runner, "--config", str(OFFLINE), "--db", str(db), "run")
    assert result.exit_code == 0, result.output
    return db


def offline(runner: CliRunner, db: Path, *args: str) -> Result:
    result = invoke(runner, "--config", str(OFFLINE), "--db", str(db), *args)
    assert result.exit_code == 0, result.output
    return result


def opened(path: Path) -> tuple[Config, Store]:
    """The config at ``path`` (the environment ignored) and its database, opened."""
    config = load_config(path, environ={})
    return config, open_store(config.database)
