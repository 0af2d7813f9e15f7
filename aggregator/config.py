"""Load config.yaml into validated, frozen dataclasses.

Precedence, highest first: command-line flag, environment (``AGGREGATOR_*``), the file,
the defaults.
Every unknown key is an error that names its path, and so is every bad value; all of them are
reported at once, each with its line (see config_problems).

Over 600 lines: each section's settings and every check of their values sit together here, so
that what a key accepts is read in one place, and the sections' validation shares one walk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from email.utils import getaddresses
from functools import cache
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

from .config_problems import Problems
from .errors import ConfigError
from .models import FeedConfig
from .options import DIGEST_FORMATS

__all__ = [
    "SUBJECT_FIELDS",
    "ClusteringConfig",
    "Config",
    "DedupeConfig",
    "DigestConfig",
    "EmailConfig",
    "MuteConfig",
    "PollingConfig",
    "config_dir",
    "default_config_path",
    "digest_times",
    "digest_zone",
    "load_config",
    "mail_address",
    "parse_duration",
    "parse_keep",
]

PROJECT_URL = "https://github.com/aggregator-news/aggregator"
DEFAULT_USER_AGENT = f"aggregator/0.1 (+{PROJECT_URL})"
ENV_PREFIX = "AGGREGATOR_"
# Variables the CLI reads itself (click's envvar), not config keys.
CLI_ENV = {"AGGREGATOR_CONFIG", "AGGREGATOR_DB"}
DEFAULT_KEEP = timedelta(days=90)


@dataclass(frozen=True)
class PollingConfig:
    """How feeds are fetched."""

    concurrency: int = 32  # requests in flight overall
    per_host: int = 2  # requests in flight per server (host and port); 0 means no limit
    timeout: float = 30.0  # total deadline of one request, in seconds
    max_bytes: int = 15 * 1024 * 1024  # cap on decoded body bytes
    user_agent: str = DEFAULT_USER_AGENT
    interval: timedelta = timedelta(minutes=60)  # between polls while a feed's pace is unknown
    adaptive: bool = True  # follow each feed's publishing pace (5 min .. 24 h)
    max_redirects: int = 5
    parse_workers: int | None = None  # processes that parse; None: one per core, 0: none
    alert_after: timedelta = timedelta(days=2)  # `run` says so when a feed fails this long


@dataclass(frozen=True)
class ClusteringConfig:
    """How articles are grouped into stories. The defaults are what `eval` measures."""

    threshold: float = 0.14  # similarity (cosine less quiet cost) an article needs to join a story
    one_word: float = 0.40  # the similarity that lets an article join on one shared word
    merge_threshold: float = 0.20  # what one article needs to each of two stories to merge them
    merge_agreement: float = 0.10  # and the cosine of those two stories' centroids
    quiet_cost: float = 0.08  # similarity a quiet story asks more of, per doubling of quiet hours
    window: timedelta = timedelta(hours=24)  # a story takes new articles this long after its last
    max_span: timedelta = timedelta(days=7)  # and none this long after its first
    title_weight: float = 2.0  # how much more a title term counts than a summary term
    summary_chars: int = 400  # how much of the summary takes part
    terms: int = 6  # key terms shown for a story
    quiet_after: timedelta = timedelta(hours=6)  # a story with no article this long is quiet


@dataclass(frozen=True)
class DedupeConfig:
    """How copies of one article from several feeds are recognised (see docs/dedup.md)."""

    near_duplicates: bool = True  # fold republished copies whose headline differs a little
    window: timedelta = timedelta(days=3)  # how far apart a copy and its original may be


@dataclass(frozen=True)
class DigestConfig:
    """What `digest` shows by default."""

    format: str = "text"
    since: timedelta | None = timedelta(hours=24)
    limit: int = 20
    min_size: int = 2
    links: int = 3
    # The times of day a digest is due ("07:00", "18:00"); none: every `run` delivers one.
    at: tuple[str, ...] = ()
    timezone: str | None = None  # of those times, e.g. Europe/Paris; None: the machine's zone


@dataclass(frozen=True)
class MuteConfig:
    """What the reader never wants in stories or digests."""

    terms: tuple[str, ...] = ()  # words or phrases, in a headline or summary; case is ignored
    feeds: tuple[str, ...] = ()  # configured feeds, by URL or title: what only they carry


# What a subject template may name: {stories} is "5 stories" or "1 story", {count} the number,
# {new} and {grown} how many are new to the reader or have grown, {top} the first headline
# (shortened), {date} the day (2026-11-24).
SUBJECT_FIELDS = frozenset({"stories", "count", "new", "grown", "top", "date"})
DEFAULT_SUBJECT = "aggregator digest: {stories}, led by {top}"


@dataclass(frozen=True)
class EmailConfig:
    """Where digests are mailed. Absent means `run` prints the digest instead."""

    smtp_host: str
    to: tuple[str, ...]
    from_addr: str
    smtp_port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_env: str | None = None  # the environment variable that holds the password
    password_file: Path | None = None  # or a file that holds it (the first line)
    subject: str = DEFAULT_SUBJECT  # placeholders: see SUBJECT_FIELDS
    ca_file: Path | None = None  # trust this CA (PEM) too, e.g. a relay's self-signed certificate
    timeout: float = 30.0  # seconds for each step of the SMTP conversation


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    database: Path
    # database.keep: articles first seen longer ago than this are pruned (saved ones never);
    # None keeps everything (`keep: all`).
    keep: timedelta | None = DEFAULT_KEEP
    feeds: tuple[FeedConfig, ...] = ()
    polling: PollingConfig = field(default_factory=PollingConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    email: EmailConfig | None = None
    mute: MuteConfig = field(default_factory=MuteConfig)
    path: Path | None = None  # the file it came from, if any


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$", re.ASCII)


def digest_times(digest: DigestConfig) -> tuple[time, ...]:
    """``digest.at`` as times of day, earliest first (checked when the config was loaded)."""
    found = set()
    for value in digest.at:
        match = _CLOCK.match(value.strip())
        assert match is not None  # _check_digest_schedule let it through
        found.add(time(int(match.group(1)), int(match.group(2))))
    return tuple(sorted(found))


def digest_zone(digest: DigestConfig) -> tzinfo:
    """The zone of ``digest.at``: ``digest.timezone``, else the machine's own."""
    from zoneinfo import ZoneInfo

    if digest.timezone:
        return ZoneInfo(digest.timezone)
    return local_zone()


def local_zone() -> tzinfo:
    """The machine's time zone, with its daylight saving rules when they can be found:
    ``$TZ``, else the zone /etc/localtime names, else its fixed offset now."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    names = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            names.append(target.split("zoneinfo/", 1)[1])
    for name in names:
        if name:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(name)
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def _check_digest_schedule(digest: DigestConfig) -> None:
    for i, value in enumerate(digest.at):
        if not _CLOCK.match(value.strip()):
            raise ConfigError(
                f"digest.at[{i}]: expected a time of day such as 07:00 or 18:30, got {value!r}"
            )
    if digest.timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(digest.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"digest.timezone: {digest.timezone!r} is not a time zone; write an IANA name "
                "such as Europe/Paris, America/New_York or UTC"
            ) from None


def config_dir() -> Path:
    """The user's config directory for aggregator, by the XDG rule: ``$XDG_CONFIG_HOME``, or
    ``~/.config`` when that is unset, empty or relative; then ``aggregator``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.expanduser("~/.config")
    return Path(base) / "aggregator"


def default_config_path() -> Path:
    """``./config.yaml`` when present, else ``config.yaml`` in the user's config directory."""
    local = Path("config.yaml")
    if local.is_file():
        return local
    return config_dir() / "config.yaml"


_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,6})?)\s*([smhdw]?)\s*$", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


MAX_DURATION = timedelta(days=36500)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_duration(value: object, *, where: str = "duration") -> timedelta:
    """Parse ``"90s"``, ``"30m"``, ``"36h"``, ``"7d"``, ``"2w"``.

    The unit is required: a bare ``24`` would be minutes to some readers and hours to others.
    """
    hint = f"{where}: expected a duration with a unit, such as 90s, 30m, 6h or 7d; got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(hint)
    match = _DURATION.match(str(value))
    if not match or not match.group(2):
        raise ConfigError(hint)
    number, unit = match.groups()
    seconds = float(number) * _UNITS[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise ConfigError(f"{where}: {value!r} is more than a century")
    return timedelta(seconds=seconds)


def load_config(
    path: Path | None = None,
    *,
    database: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the config. ``path=None`` takes the default location.

    A missing default file gives the defaults (no feeds); a missing explicit file is an error.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None
    path = path if path is not None else default_config_path()
    raw: Any = {}
    if path.is_file():
        raw = _read_yaml(path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    elif explicit:
        raise ConfigError(f"{path}: no such config file")
    base_dir = path.resolve().parent if path.is_file() else config_dir()
    problems = Problems()
    raw, from_env = _apply_env(dict(raw), environ, problems)
    config = _build(raw, base_dir, problems)
    if problems.messages:
        raise ConfigError(
            problems.report(path if path.is_file() else None, from_env, top_keys=_TOP_KEYS)
        )
    config = dataclasses.replace(config, path=path if path.is_file() else None)
    if database is not None:
        config = dataclasses.replace(config, database=database)
    return config


def _read_yaml(path: Path) -> Any:
    try:
        # safe_load's rules, in libyaml's C when present: a 2,000-feed list loads 20x faster.
        # Read from the open file, so YAML's own messages name it.
        with path.open(encoding="utf-8") as stream:
            return yaml.load(stream, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = "; ".join(str(part) for part in (e.context, e.problem) if part)
        raise ConfigError(f"{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e


# --- validation -------------------------------------------------------------------------------

_SECTIONS: dict[str, type] = {
    "polling": PollingConfig,
    "clustering": ClusteringConfig,
    "dedupe": DedupeConfig,
    "digest": DigestConfig,
    "email": EmailConfig,
    "mute": MuteConfig,
}
_TOP_KEYS = {"database", "feeds", *_SECTIONS}
# Keys that were settings once: what to tell a reader whose config still has them.
_RETIRED = {
    ("clustering", "half_life"): (
        "no longer a setting; a quiet story now asks for more similarity instead of fading"
        " (clustering.quiet_cost)"
    ),
}
# (section, dataclass field) -> YAML key, where they differ ("from" is a Python keyword).
_YAML_NAME = {("email", "from_addr"): "from"}


def _unknown(key: str, where: str, known: set[str]) -> ConfigError:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known_list = ", ".join(sorted(known))
    return ConfigError(f"{where}: unknown key{hint}; known keys: {known_list}")


def _apply_env(
    raw: dict[str, Any], environ: Mapping[str, str], problems: Problems
) -> tuple[dict[str, Any], dict[str, str]]:
    """Overlay ``AGGREGATOR_DATABASE`` and ``AGGREGATOR_<SECTION>_<KEY>`` on the file's values.

    Returns the settings and, for each key the environment set, the variable that set it.
    """
    from_env: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in CLI_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest in ("database", "database_path", "database_keep"):
            # `database:` is a path, or a mapping of path and keep.
            current = raw.get("database")
            merged = dict(current) if isinstance(current, dict) else {}
            if isinstance(current, str):
                merged["path"] = current
            field = rest.removeprefix("database").lstrip("_") or "path"
            merged[field] = value
            raw["database"] = merged
            from_env["database" if field == "path" else f"database.{field}"] = name
            continue
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            close = difflib.get_close_matches(rest, sorted(_env_names()), n=1)
            hint = f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""
            problems.check(False, f"{name}: not a setting aggregator knows{hint}")
            continue
        key = rest[len(section) + 1 :]
        known = _section_keys(section)
        if (section, key) in _RETIRED:
            problems.check(False, f"{name}: {_RETIRED[section, key]}: unset it")
            continue
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.check(False, f"{name}: unknown key {section}.{key}{hint}")
            continue
        current = raw.get(section)
        merged = dict(current) if isinstance(current, dict) else {}
        merged[key] = _env_value(value)
        raw[section] = merged
        from_env[f"{section}.{key}"] = name
    return raw, from_env


def _section_keys(section: str) -> set[str]:
    return {
        _YAML_NAME.get((section, f.name), f.name) for f in dataclasses.fields(_SECTIONS[section])
    }


def _env_names() -> set[str]:
    return {"database", "database_path", "database_keep"} | {
        f"{s}_{k}" for s in _SECTIONS for k in _section_keys(s)
    }


def _env_value(value: str) -> Any:
    """Numbers, booleans and lists as YAML would read them; anything else as plain text."""
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value
    return value if isinstance(parsed, dict) else parsed


def _build(raw: dict[str, Any], base_dir: Path, problems: Problems) -> Config:
    """The Config of ``raw``; each problem goes to ``problems`` and its part keeps its default,
    so that every other part is checked too."""
    for key in raw:
        if key not in _TOP_KEYS:
            problems.messages.append(str(_unknown(str(key), str(key), _TOP_KEYS)))
    database, keep = _database(raw.get("database", "aggregator.db"), problems)
    db_path = Path(database).expanduser()
    if not db_path.is_absolute():
        db_path = base_dir / db_path
    before = len(problems.messages)
    feeds = _feeds(raw.get("feeds", []), base_dir, problems)
    feeds_ok = len(problems.messages) == before
    polling = _section("polling", raw.get("polling"), problems)
    clustering = _section("clustering", raw.get("clustering"), problems)
    dedupe = _section("dedupe", raw.get("dedupe"), problems)
    digest = _section("digest", _sexagesimal(raw.get("digest")), problems)
    email = _section("email", raw.get("email"), problems) if raw.get("email") is not None else None
    if email is not None:
        for name in ("password_file", "ca_file"):
            path = getattr(email, name)
            if path is not None and not path.is_absolute():
                email = dataclasses.replace(email, **{name: base_dir / path})
    _check_values(polling, clustering, dedupe, digest, email, problems)
    mute = _mute(_section("mute", raw.get("mute"), problems), feeds, base_dir, problems, feeds_ok)
    return Config(
        database=db_path,
        keep=keep,
        feeds=feeds,
        polling=polling,
        clustering=clustering,
        dedupe=dedupe,
        digest=digest,
        email=email,
        mute=mute,
    )


def _database(value: Any, problems: Problems) -> tuple[str, timedelta | None]:
    """``database:`` as a path, or as ``{path, keep}``: the path and how long articles stay.
    A problem goes to ``problems``, and that setting keeps its default."""
    keep: timedelta | None = DEFAULT_KEEP
    if isinstance(value, dict):
        known = {"path", "keep"}
        for key in value:
            if key not in known:
                problems.messages.append(str(_unknown(str(key), f"database.{key}", known)))
        if "keep" in value:
            with problems.gather():
                keep = parse_keep(value["keep"], where="database.keep")
        value = value.get("path", "aggregator.db")
    if not isinstance(value, str) or not value.strip():
        problems.check(False, f"database: expected a file path, got {value!r}")
        value = "aggregator.db"
    return value, keep


def parse_keep(value: object, *, where: str) -> timedelta | None:
    """How long articles stay: a duration of a day or more, or ``all`` (None: no pruning)."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    keep = parse_duration(value, where=where)
    if keep < timedelta(days=1):
        raise ConfigError(f"{where}: {value!r} is less than a day; keep articles a day or more")
    return keep


def _sexagesimal(digest: Any) -> Any:
    """YAML 1.1 reads an unquoted 18:00 as the number 1080 (18 × 60): ``digest.at`` reads it
    back as the time it was written as. (07:00 stays text: a leading zero is not a number.)"""
    if not isinstance(digest, dict) or "at" not in digest:
        return digest
    times = digest["at"] if isinstance(digest["at"], list) else [digest["at"]]
    times = [
        f"{t // 60:02d}:{t % 60:02d}" if isinstance(t, int) and not isinstance(t, bool) else t
        for t in times
    ]
    return {**digest, "at": times}


def _mute(
    mute: MuteConfig,
    feeds: tuple[FeedConfig, ...],
    base_dir: Path,
    problems: Problems,
    feeds_ok: bool = True,
) -> MuteConfig:
    """Check the rules, and name each muted feed by its configured URL."""
    for i, term in enumerate(mute.terms):
        if not re.search(r"\w", term):
            problems.check(False, f"mute.terms[{i}]: {term!r} has no word to look for")
            continue
        # The search index keeps only words, and punctuation between them is a space (so
        # "6.4" or "coast; magnitude" match as written), but a symbol that is part of a name
        # would vanish: "C++" would mute every "C", "AT&T" every "at T".
        symbol = re.search(r"[+&#@$%*/\\|<>=~^]", term)
        problems.check(
            not symbol,
            f"mute.terms[{i}]: {term!r}: the search index ignores "
            f"{symbol.group() if symbol else ''!r}, so this would mute more than it says; "
            "write the words alone",
        )
    by_name: dict[str, str | None] = {}
    for feed in feeds:
        if feed.title:
            title = feed.title.casefold()
            by_name[title] = None if title in by_name else feed.url  # None: two feeds
        by_name[feed.url] = feed.url
    urls: list[str] = []
    for i, name in enumerate(mute.feeds):
        if by_name.get(name.strip().casefold(), "") is None:
            problems.check(
                False, f"mute.feeds[{i}]: {name!r} is the title of two feeds: give a URL"
            )
            continue
        url = by_name.get(name) or by_name.get(name.strip().casefold())
        if url is None:
            with contextlib.suppress(ConfigError):
                url = by_name.get(resolve_feed_location(name.strip(), base_dir))
        if url is None:
            # When feeds: itself is wrong, the feed may be one of those in error.
            problems.check(
                not feeds_ok,
                f"mute.feeds[{i}]: {name!r} is not the URL or title of a feed in feeds:",
            )
            continue
        urls.append(url)
    return MuteConfig(terms=tuple(t.strip() for t in mute.terms), feeds=tuple(urls))


def _feeds(value: Any, base_dir: Path, problems: Problems) -> tuple[FeedConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.check(False, "feeds: expected a list of URLs or of {url, title, tags}")
        return ()
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        with problems.gather():
            feed = _feed(f"feeds[{i}]", item, base_dir, seen)
            seen.add(feed.url)
            feeds.append(feed)
    return tuple(feeds)


def _feed(where: str, item: Any, base_dir: Path, seen: set[str]) -> FeedConfig:
    if isinstance(item, str):
        item = {"url": item}
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a URL or a mapping with url, title, tags")
    for key in item:
        if key not in {"url", "title", "tags"}:
            raise _unknown(str(key), f"{where}.{key}", {"url", "title", "tags"})
    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}.url: expected a feed URL or path")
    try:
        url = resolve_feed_location(url.strip(), base_dir)
    except ConfigError as e:
        raise ConfigError(f"{where}.url: {e}") from None
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"{where}.title: expected text, got {title!r}")
    tags = item.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{where}.tags: expected a list of words")
    if url in seen:
        raise ConfigError(f"{where}.url: {url} is listed twice")
    return FeedConfig(url=url, title=title, tags=tuple(tags))


def resolve_feed_location(url: str, base_dir: Path) -> str:
    """http(s) and file URLs stay as they are; a bare path is made absolute from ``base_dir``."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        scheme = url.split("://", 1)[0].lower()
        if scheme not in {"http", "https", "file"}:
            raise ConfigError(f"feed {url}: only http, https, file URLs and paths are supported")
        try:
            host = urlsplit(url).hostname
        except ValueError as e:
            raise ConfigError(f"feed {url}: not a valid URL ({e})") from None
        if scheme != "file" and not host:
            raise ConfigError(f"feed {url}: the URL names no host")
        return url
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return str(path.resolve())


def _section(name: str, value: Any, problems: Problems) -> Any:
    """The section's dataclass; a bad key is a problem, and that setting keeps its default."""
    cls = _SECTIONS[name]
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.check(False, f"{name}: expected a mapping of settings")
        value = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = _field_types(cls)
    # YAML key -> dataclass field
    keys = {_YAML_NAME.get((name, f), f): f for f in fields}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key)
        if key not in keys:
            if (name, key) in _RETIRED:
                problems.messages.append(f"{name}.{key}: {_RETIRED[name, key]}: delete the line")
            else:
                problems.messages.append(str(_unknown(key, f"{name}.{key}", set(keys))))
            continue
        with problems.gather():
            kwargs[keys[key]] = _coerce(f"{name}.{key}", types[keys[key]], item)
    missing = [
        key
        for key, f in keys.items()
        if key not in value
        and fields[f].default is dataclasses.MISSING
        and fields[f].default_factory is dataclasses.MISSING
    ]
    if missing:
        problems.check(False, f"{name}: missing required key(s): {', '.join(missing)}")
        return None if name == "email" else cls()
    if not all(f in kwargs for f in keys.values() if fields[f].default is dataclasses.MISSING):
        return None  # a required setting was given but is wrong (only email has those)
    return cls(**kwargs)


@cache
def _field_types(cls: type) -> dict[str, Any]:
    """Each field's type, resolved from its annotation (a string, under PEP 563)."""
    return get_type_hints(cls)


def _coerce(where: str, kind: Any, value: Any) -> Any:
    """``value`` from YAML or the environment as the field's type ``kind``, or a ConfigError."""
    optional = get_origin(kind) is UnionType and NoneType in get_args(kind)
    if optional:
        (kind,) = (arg for arg in get_args(kind) if arg is not NoneType)
        if value is None:
            return None
    if kind is timedelta:
        if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
            if optional:
                return None
            raise ConfigError(f"{where}: expected a duration such as 30m, 6h or 7d")
        return parse_duration(value, where=where)
    if get_origin(kind) is tuple and get_args(kind) == (str, ...):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of text values")
        return tuple(value)
    if kind is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a file path, got {value!r}")
        return Path(value).expanduser()
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    raise AssertionError(f"no coercion for {where} ({kind})")  # a bug, not a user error


def _check_values(
    polling: PollingConfig,
    clustering: ClusteringConfig,
    dedupe: DedupeConfig,
    digest: DigestConfig,
    email: EmailConfig | None,
    problems: Problems,
) -> None:
    checks: list[tuple[bool, str]] = [
        (polling.concurrency >= 1, "polling.concurrency: must be at least 1"),
        (polling.per_host >= 0, "polling.per_host: must be 0 (no limit) or more"),
        (polling.timeout > 0, "polling.timeout: must be more than 0 seconds"),
        (polling.max_bytes >= 1024, "polling.max_bytes: must be at least 1024"),
        (bool(polling.user_agent.strip()), "polling.user_agent: must not be empty"),
        (
            "\r" not in polling.user_agent and "\n" not in polling.user_agent,
            "polling.user_agent: must be one line",
        ),
        (polling.interval >= timedelta(minutes=1), "polling.interval: must be at least 1 minute"),
        (0 <= polling.max_redirects <= 20, "polling.max_redirects: must be between 0 and 20"),
        (
            polling.parse_workers is None or 0 <= polling.parse_workers <= 64,
            "polling.parse_workers: must be between 0 (parse in the polling process) and 64",
        ),
        (0 < clustering.threshold < 1, "clustering.threshold: must be between 0 and 1"),
        (
            clustering.threshold <= clustering.merge_threshold <= 1,
            "clustering.merge_threshold: must be between clustering.threshold and 1",
        ),
        (
            clustering.threshold <= clustering.one_word <= 1,
            f"clustering.one_word ({ClusteringConfig.one_word:.2f} unless set): must be between"
            " clustering.threshold and 1; a higher threshold needs a higher one_word too",
        ),
        (0 <= clustering.merge_agreement <= 1, "clustering.merge_agreement: must be 0 to 1"),
        (0 <= clustering.quiet_cost <= 1, "clustering.quiet_cost: must be between 0 and 1"),
        (clustering.window > timedelta(0), "clustering.window: must be positive"),
        (clustering.max_span >= timedelta(days=1), "clustering.max_span: must be a day or more"),
        (clustering.title_weight > 0, "clustering.title_weight: must be positive"),
        (clustering.summary_chars >= 0, "clustering.summary_chars: must be 0 or more"),
        (clustering.terms >= 1, "clustering.terms: must be at least 1"),
        (clustering.quiet_after > timedelta(0), "clustering.quiet_after: must be positive"),
        (dedupe.window > timedelta(0), "dedupe.window: must be positive"),
        (
            digest.format in DIGEST_FORMATS,
            f"digest.format: must be {', '.join(DIGEST_FORMATS[:-1])} or {DIGEST_FORMATS[-1]}",
        ),
        (digest.limit >= 0, "digest.limit: must be 0 (no limit) or more"),
        (digest.min_size >= 1, "digest.min_size: must be at least 1"),
        (1 <= digest.links <= 10, "digest.links: must be between 1 and 10"),
        (polling.alert_after > timedelta(0), "polling.alert_after: must be positive"),
    ]
    if email is not None:
        checks += [
            (
                email.security in {"starttls", "ssl", "none"},
                "email.security: must be starttls, ssl or none",
            ),
            (1 <= email.smtp_port <= 65535, "email.smtp_port: must be a port number"),
            (bool(email.to), "email.to: needs at least one address"),
            (
                not (email.password_env and email.password_file),
                "email: give password_env or password_file, not both",
            ),
            (
                not email.username or email.security != "none",
                "email.username: a login needs security starttls or ssl; aggregator never sends "
                "credentials in the clear",
            ),
            (
                email.username is not None or not (email.password_env or email.password_file),
                "email: a password needs a username",
            ),
            (bool(email.smtp_host.strip()), "email.smtp_host: must not be empty"),
            (email.timeout > 0, "email.timeout: must be more than 0 seconds"),
        ]
    for ok, message in checks:
        problems.check(ok, message)
    with problems.gather():
        _check_digest_schedule(digest)
    if email is not None:
        _check_email(email, problems)


def mail_address(value: str, where: str) -> str:
    """The bare address of ``value`` ("Name <a@example.org>" or "a@example.org"), checked."""

    if any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{where}: an address must be one line")
    found = getaddresses([value])
    address = found[0][1] if len(found) == 1 else ""
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(ch.isspace() for ch in address):
        raise ConfigError(f"{where}: {value!r} is not an email address such as news@example.org")
    if not address.isascii():
        raise ConfigError(
            f"{where}: {address!r} has characters beyond ASCII, which SMTP without SMTPUTF8 "
            "cannot carry; write an international domain in its xn-- form"
        )
    return address


def _check_email(email: EmailConfig, problems: Problems) -> None:
    with problems.gather():
        mail_address(email.from_addr, "email.from")
    for i, recipient in enumerate(email.to):
        with problems.gather():
            mail_address(recipient, f"email.to[{i}]")
    with problems.gather():
        _check_subject(email.subject)


def _check_subject(subject: str) -> None:
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(subject)
            if name is not None
        ]
    except ValueError as e:
        raise ConfigError(f"email.subject: {e} (write {{{{ and }}}} for a literal brace)") from None
    known = ", ".join("{" + f + "}" for f in sorted(SUBJECT_FIELDS))
    for name, spec, conversion in fields:
        if name not in SUBJECT_FIELDS:
            raise ConfigError(f"email.subject: unknown placeholder {{{name}}}; known: {known}")
        if spec or conversion:
            raise ConfigError(f"email.subject: write {{{name}}} plainly, without a format")
