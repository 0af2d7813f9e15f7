"""The ingestion corpus: every file of ../shared/corpus served over HTTP and polled for real.

Proves that no document, however broken, makes a poll raise or log an error: each feed ends
as ok (or not modified), not a feed, or an error whose one-line message says what went wrong;
and that the corpus's well-formed feeds are in fact read and stored, not merely survived.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.models import FeedOutcome, FeedStatus, PollReport
from aggregator.pipeline import poll
from aggregator.store import open_store

from .conftest import FeedServer, Route, serving, shared_path

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# Where feedparser's own test server runs; its Location headers point there.
FEEDPARSER_ORIGIN = "http://localhost:8097/"
# feedparser's server answers this path with a bare 304 (http_redirect_to_304.xml goes there).
RETURN_304 = "/-/return-304.xml"
# The leading comment of a feedparser test file, and its "Header: Name: value" lines.
LEADING_COMMENT = re.compile(rb"\A\s*<!--(.*?)-->", re.DOTALL)
HEADER_LINE = re.compile(rb"^\s*Header:\s*([^:\r\n]+?)\s*:\s*([^\r\n]*?)\s*$", re.MULTILINE)
CONTENT_TYPES = {
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".opml": "text/x-opml",
    ".rdf": "application/rdf+xml",
    ".rss": "application/rss+xml",
    ".xml": "application/xml",
}
# The compression tests are served as they are, with the encoding their suffix names.
CONTENT_ENCODINGS = {".gz": "gzip", ".z": "deflate"}

ACCEPTED = {FeedStatus.OK, FeedStatus.NOT_MODIFIED}  # "ok"
REFUSED = {FeedStatus.NOT_A_FEED}  # "not a feed"
FAILED = {FeedStatus.ERROR, FeedStatus.GONE}  # "an error with a message"


@dataclass(frozen=True)
class CorpusFile:
    """One corpus file and where the test server serves it."""

    name: str  # e.g. "feedparser/http/http_status_404.xml"
    path: Path
    route: str  # the URL path it is served at


def corpus_files() -> list[CorpusFile]:
    """Every feedparser test document and every real feed or subscription list (no licences)."""
    files = []
    feedparser_dir = shared_path("corpus", "feedparser")
    for path in sorted(p for p in feedparser_dir.rglob("*") if p.is_file()):
        if path.name.startswith("LICENSE"):
            continue
        relative = path.relative_to(feedparser_dir).as_posix()
        files.append(CorpusFile(f"feedparser/{relative}", path, f"/tests/{relative}"))
    real_dir = shared_path("corpus", "real-feeds")
    for path in sorted(p for p in real_dir.iterdir() if p.is_file()):
        if path.name.startswith("LICENSE"):
            continue
        files.append(CorpusFile(f"real-feeds/{path.name}", path, f"/real-feeds/{path.name}"))
    return files


def route_for(body: bytes, suffix: str, base: str) -> Route:
    """How feedparser's test server answers with ``body``: its Header lines, else a plain 200."""
    declared: dict[str, str] = {}
    comment = LEADING_COMMENT.match(body)
    if comment:
        for name, value in HEADER_LINE.findall(comment.group(1)):
            declared[name.decode("latin-1").strip().lower()] = value.decode("latin-1")
    if suffix in CONTENT_ENCODINGS:
        headers = {"Content-Type": "application/xml", "Content-Encoding": CONTENT_ENCODINGS[suffix]}
    else:
        headers = {"Content-Type": declared.pop("content-type", CONTENT_TYPES[suffix])}
    status = int(declared.pop("status", "200"))
    etag = declared.pop("etag", None)
    last_modified = declared.pop("last-modified", None)
    if "location" in declared:
        location = declared.pop("location")
        if location.startswith(FEEDPARSER_ORIGIN):
            location = base + "/" + location.removeprefix(FEEDPARSER_ORIGIN)
        headers["Location"] = location
    headers.update({name.title(): value for name, value in declared.items()})
    return Route(body=body, status=status, headers=headers, etag=etag, last_modified=last_modified)


@dataclass(frozen=True)
class Corpus:
    """The corpus on a loopback server."""

    server: FeedServer
    files: dict[str, CorpusFile]  # by URL

    def url(self, name: str) -> str:
        return next(url for url, f in self.files.items() if f.name == name)


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    files = corpus_files()
    with serving() as server:
        for file in files:
            server.add(file.route, route_for(file.path.read_bytes(), file.path.suffix, server.base))
        server.add(RETURN_304, status=304)
        yield Corpus(server, {server.url(f.route): f for f in files})


@dataclass(frozen=True)
class Polled:
    """One poll of the corpus: the report, each outcome by corpus file, what was logged."""

    report: PollReport
    outcomes: dict[str, FeedOutcome]  # by CorpusFile.name
    articles: int  # articles in the database afterwards
    errors_logged: list[logging.LogRecord]  # records at ERROR or above


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def poll_corpus(
    urls: list[str],
    files: dict[str, CorpusFile],
    directory: Path,
    *,
    parse_workers: int | None = None,
) -> Polled:
    """One real poll of ``urls``, with a config and database of its own in ``directory``."""
    directory.mkdir(exist_ok=True)
    config_path = directory / "config.yaml"
    polling = ["polling:", "  per_host: 0"]  # one loopback host serves the whole corpus
    if parse_workers is not None:
        polling.append(f"  parse_workers: {parse_workers}")
    lines = ["database: agg.db", "feeds:", *(f"  - {url}" for url in urls), *polling]
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(config_path, environ={})
    store = open_store(config.database)
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    try:
        report = poll(config, store, all_feeds=True, now=NOW, rng=random.Random(7))
        articles = store.counts()["articles"]
    finally:
        logging.getLogger().removeHandler(collect)
        store.close()
    outcomes = {files[o.url].name: o for o in report.outcomes}
    return Polled(report, outcomes, articles, collect.records)


def problems(outcome: FeedOutcome) -> list[str]:
    """What is wrong with one outcome, measured against the corpus's rule."""
    found = []
    if outcome.status not in ACCEPTED | REFUSED | FAILED:
        found.append(f"status {outcome.status!r}")
    if outcome.status in REFUSED | FAILED:
        message = (outcome.message or "").strip()
        if not message:
            found.append("no message")
        elif len(message.splitlines()) > 1:
            found.append("a message of several lines")
    if "internal error" in (outcome.message or ""):
        found.append("an internal error")
    return found


def listing(outcomes: dict[str, FeedOutcome], names: Iterable[str]) -> str:
    return "\n".join(
        f"{name}: {outcomes[name].status} {outcomes[name].message!r}" for name in names
    )


@pytest.fixture(scope="module")
def pooled(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Polled:
    """The whole corpus in one poll, parsed in worker processes as production does."""
    return poll_corpus(list(corpus.files), corpus.files, tmp_path_factory.mktemp("pooled"))


@pytest.fixture(scope="module")
def in_process(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Polled:
    """The whole corpus again, parsed in the polling process (parse_workers: 0)."""
    directory = tmp_path_factory.mktemp("in-process")
    return poll_corpus(list(corpus.files), corpus.files, directory, parse_workers=0)


@pytest.mark.parametrize("run", ["pooled", "in_process"])
def test_every_corpus_file_gets_a_clear_outcome(
    run: str, corpus: Corpus, request: pytest.FixtureRequest
) -> None:
    polled: Polled = request.getfixturevalue(run)
    assert sorted(polled.outcomes) == sorted(f.name for f in corpus.files.values())
    wrong = {name: problems(o) for name, o in polled.outcomes.items() if problems(o)}
    assert not wrong, "\n".join(
        f"{name}: {polled.outcomes[name].status} {polled.outcomes[name].message!r}: {', '.join(p)}"
        for name, p in sorted(wrong.items())
    )
    assert not polled.errors_logged, "\n".join(
        f"{r.name}: {r.getMessage()}" for r in polled.errors_logged
    )


def test_the_corpus_feeds_are_read_not_merely_survived(pooled: Polled) -> None:
    outcomes = pooled.outcomes
    wellformed = [n for n in outcomes if n.startswith("feedparser/wellformed/")]
    not_ok = [n for n in wellformed if outcomes[n].status not in ACCEPTED]
    assert len(wellformed) > 500
    assert len(not_ok) <= len(wellformed) // 50, listing(outcomes, not_ok)
    # Most of feedparser's documents test feed-level elements; a third or more have items.
    with_items = [n for n in wellformed if outcomes[n].entries > 0]
    assert len(with_items) > 300
    # Every real RSS, Atom, RDF or JSON feed is read with its items, bar two JSON files that
    # are no JSON Feed: an RSS document written as JSON, and a feed cut off mid-string.
    not_json_feeds = {"real-feeds/ScriptingNews.json", "real-feeds/allthis-partial.json"}
    real = [
        n
        for n in outcomes
        if n.startswith("real-feeds/") and not n.endswith(".opml") and n not in not_json_feeds
    ]
    unread = [n for n in real if outcomes[n].status != FeedStatus.OK or not outcomes[n].entries]
    assert len(real) == 35
    assert not unread, listing(outcomes, unread)
    for name in not_json_feeds:
        assert outcomes[name].status in REFUSED | FAILED, listing(outcomes, [name])
    for name in ("real-feeds/Subs.opml", "real-feeds/SubsNoTitleAttributes.opml"):
        assert outcomes[name].status in REFUSED | FAILED, listing(outcomes, [name])
    # The items were stored: each article once, however many feeds carried it.
    assert pooled.articles == pooled.report.new_articles > 900


def test_the_parser_processes_and_the_polling_process_agree(
    pooled: Polled, in_process: Polled
) -> None:
    differ = [
        n for n in pooled.outcomes if pooled.outcomes[n].status != in_process.outcomes[n].status
    ]
    assert not differ, "\n".join(
        f"{n}: {pooled.outcomes[n].status} in workers, {in_process.outcomes[n].status} in process "
        f"({in_process.outcomes[n].message!r})"
        for n in differ
    )
    assert in_process.articles == pooled.articles


@pytest.mark.parametrize("run", ["pooled", "in_process"])
def test_http_headers_from_the_corpus_are_obeyed(run: str, request: pytest.FixtureRequest) -> None:
    outcomes = request.getfixturevalue(run).outcomes

    def outcome(name: str) -> FeedOutcome:
        return outcomes["feedparser/" + name]

    for status in (301, 302, 303, 307):  # each redirects to target.xml, whose one item is read
        redirected = outcome(f"http/http_status_{status}.xml")
        assert (redirected.status, redirected.entries) == (FeedStatus.OK, 1), status
    assert "moved permanently" in (outcome("http/http_status_301.xml").notice or "")
    assert outcome("http/http_redirect_to_304.xml").status == FeedStatus.NOT_MODIFIED
    for name, code in (("http_status_404.xml", "404"), ("http_status_302-no-location.xml", "302")):
        failed = outcome(f"http/{name}")
        assert failed.status == FeedStatus.ERROR and code in (failed.message or ""), failed
    # Compressed as their Content-Encoding says (raw deflate too), the documents are read...
    for name in ("gzip.gz", "deflate.z", "deflate-no-headers.z"):
        assert outcome(f"compression/{name}").status == FeedStatus.OK, name
    # ...and a body that does not decompress is an error that says so.
    for name in ("gzip-not-compressed.gz", "gzip-struct-error.gz", "deflate-not-compressed.z"):
        broken = outcome(f"compression/{name}")
        assert broken.status == FeedStatus.ERROR, name
        assert "could not be decompressed" in (broken.message or ""), broken


def test_a_second_poll_revalidates_with_the_etag_a_corpus_file_names(
    corpus: Corpus, tmp_path: Path
) -> None:
    """http_status_304.xml is served with an ETag: the next poll sends it back, gets a 304."""
    conditional, plain = "feedparser/http/http_status_304.xml", "feedparser/http/target.xml"
    urls = [corpus.url(conditional), corpus.url(plain)]
    first = poll_corpus(urls, corpus.files, tmp_path, parse_workers=0)
    second = poll_corpus(urls, corpus.files, tmp_path, parse_workers=0)
    assert first.outcomes[conditional].status == first.outcomes[plain].status == FeedStatus.OK
    assert second.outcomes[conditional].status == FeedStatus.NOT_MODIFIED
    assert second.outcomes[plain].status == FeedStatus.OK  # the same bytes again: unchanged
    route = corpus.files[urls[0]].route
    assert corpus.server.hits(route)[-1].headers.get("if-none-match") == '"abc123"'
    assert not first.errors_logged and not second.errors_logged
