from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import (
    ClusteringConfig,
    Config,
    DigestConfig,
    PollingConfig,
    config_dir,
    default_config_path,
    load_config,
    parse_duration,
)
from aggregator.errors import ConfigError
from aggregator.feedlist import add_feed_to_file, remove_feed_from_file
from aggregator.models import FeedConfig

EMAIL = """
email:
  smtp_host: mail.example.com
  to: [me@example.com]
  from: news@example.com
"""


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(directory: Path, text: str) -> Config:
    return load_config(write(directory, text), environ={})


# --- the file itself ---------------------------------------------------------------------------


def test_explicit_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_config(missing, environ={})


def test_no_file_at_default_location_gives_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The default location falls back to the user's config directory: keep it inside tmp_path.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = load_config(None, environ={})
    assert config.feeds == ()
    assert config.polling == PollingConfig()
    assert config.clustering == ClusteringConfig()
    assert config.digest == DigestConfig()
    assert config.email is None
    assert config.path is None
    assert config.database.name == "aggregator.db"
    assert config.database.is_absolute()


def test_default_location_is_config_yaml_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "feeds: [https://example.com/rss]\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert [f.url for f in config.feeds] == ["https://example.com/rss"]
    assert config.database.resolve() == tmp_path / "aggregator.db"


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [
        ("/xdg/conf", "/xdg/conf/aggregator"),
        (None, "/home/reader/.config/aggregator"),
        ("", "/home/reader/.config/aggregator"),  # empty: as if unset (XDG Base Directory)
        ("relative/conf", "/home/reader/.config/aggregator"),  # relative: ignored, likewise
    ],
)
def test_the_user_config_directory_follows_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here
    monkeypatch.setenv("HOME", "/home/reader")
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert config_dir() == Path(expected)
    assert default_config_path() == Path(expected) / "config.yaml"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "# nothing but a comment\n")
    assert config.feeds == ()
    assert config.polling == PollingConfig()
    assert config.path == tmp_path / "config.yaml"
    assert config.database == tmp_path / "aggregator.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("plain words\n", "mapping"),
    ],
)
def test_file_that_is_not_a_mapping_of_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"feeds:\n  - \xff\xfe\x00bad\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path, environ={})


# --- unknown keys ------------------------------------------------------------------------------


UNKNOWN_KEYS = [
    ("databse: x.db\n", "databse", "database"),
    ("polling:\n  concurency: 4\n", "polling.concurency", "concurrency"),
    ("clustering:\n  treshold: 0.4\n", "clustering.treshold", "threshold"),
    ("digest:\n  formt: html\n", "digest.formt", "format"),
    ("feeds:\n  - url: https://example.com/rss\n    titel: X\n", "feeds[0].titel", "title"),
    (EMAIL.replace("from:", "form:"), "email.form", "from"),
]


@pytest.mark.parametrize(
    ("text", "path", "suggestion"), UNKNOWN_KEYS, ids=[path for _, path, _ in UNKNOWN_KEYS]
)
def test_unknown_key_names_its_path_and_suggests_close_match(
    tmp_path: Path, text: str, path: str, suggestion: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(path + ":") or f" {path}:" in message
    assert f"'{suggestion}'" in message


def test_unknown_key_with_no_close_match_still_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"polling\.zzzzzz"):
        load(tmp_path, "polling:\n  zzzzzz: 1\n")


def test_a_retired_key_says_what_replaced_it(tmp_path: Path) -> None:
    for text, environ in (
        ("clustering:\n  half_life: 2h\n", {}),
        ("", {"AGGREGATOR_CLUSTERING_HALF_LIFE": "2h"}),
    ):
        path = tmp_path / "config.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(path, environ=environ)
        assert "no longer a setting" in str(info.value)
        assert "clustering.quiet_cost" in str(info.value)
        if environ:
            assert "AGGREGATOR_CLUSTERING_HALF_LIFE: no longer" in str(info.value)
            assert str(info.value).endswith("unset it")
        else:
            assert "clustering.half_life: no longer a setting" in str(info.value)
            assert str(info.value).endswith("delete the line")


# --- values ------------------------------------------------------------------------------------


BAD_VALUES = [
    ("polling:\n  concurrency: -1\n", "polling.concurrency"),
    ("polling:\n  concurrency: 0\n", "polling.concurrency"),
    ("polling:\n  concurrency: many\n", "polling.concurrency"),
    ("polling:\n  concurrency: 2.5\n", "polling.concurrency"),
    ("polling:\n  timeout: 0\n", "polling.timeout"),
    ("polling:\n  interval: soon\n", "polling.interval"),
    ("polling:\n  interval: -5m\n", "polling.interval"),
    ("polling:\n  interval: 20s\n", "polling.interval"),
    ("polling:\n  user_agent: ''\n", "polling.user_agent"),
    ("clustering:\n  threshold: 1.5\n", "clustering.threshold"),
    ("clustering:\n  threshold: 0\n", "clustering.threshold"),
    ("clustering:\n  threshold: yes\n", "clustering.threshold"),
    ("clustering:\n  quiet_cost: -0.1\n", "clustering.quiet_cost"),
    ("clustering:\n  quiet_cost: 2\n", "clustering.quiet_cost"),
    ("clustering:\n  one_word: 0.1\n", "clustering.one_word"),
    ("clustering:\n  merge_agreement: 2\n", "clustering.merge_agreement"),
    ("clustering:\n  window: 0\n", "clustering.window"),
    ("clustering:\n  max_span: 12h\n", "clustering.max_span"),
    ("digest:\n  format: pdf\n", "digest.format"),
    ("digest:\n  links: 0\n", "digest.links"),
    ("digest:\n  min_size: 0\n", "digest.min_size"),
    ("polling: fast\n", "polling"),
    ("feeds: https://example.com/rss\n", "feeds"),
    ("feeds:\n  url: https://example.com/rss\n", "feeds"),
    ("feeds:\n  - 42\n", "feeds[0]"),
    ("feeds:\n  - title: no url\n", "feeds[0].url"),
    ("feeds:\n  - url: https://example.com/rss\n    tags: [1, 2]\n", "feeds[0].tags"),
    ("database: 12\n", "database"),
    (EMAIL.replace("  smtp_host: mail.example.com\n", ""), "smtp_host"),
    (EMAIL + "  security: tls\n", "email.security"),
    (EMAIL + "  smtp_port: 70000\n", "email.smtp_port"),
    (EMAIL.replace("to: [me@example.com]", "to: []"), "email.to"),
    (EMAIL + "  password_env: X\n  password_file: /p\n", "email"),
]


@pytest.mark.parametrize(("text", "where"), BAD_VALUES, ids=[where for _, where in BAD_VALUES])
def test_bad_value_is_a_config_error_naming_the_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError, match=rf"(^|\W){re.escape(where)}(\W|$)"):
        load(tmp_path, text)


def test_security_error_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="starttls") as info:
        load(tmp_path, EMAIL + "  security: tls\n")
    assert "ssl" in str(info.value)


def test_email_section(tmp_path: Path) -> None:
    config = load(tmp_path, EMAIL + "  security: ssl\n  smtp_port: 465\n")
    email = config.email
    assert email.smtp_host == "mail.example.com"
    assert email.to == ("me@example.com",)
    assert email.from_addr == "news@example.com"
    assert (email.security, email.smtp_port) == ("ssl", 465)


def test_relative_password_file_resolves_against_config_dir(
    conf_dir: Path,
) -> None:
    config = load(conf_dir, EMAIL + "  username: me\n  password_file: secrets/smtp.txt\n")
    assert config.email is not None
    assert config.email.password_file == conf_dir / "secrets" / "smtp.txt"


def test_email_to_may_be_a_single_address(tmp_path: Path) -> None:
    config = load(tmp_path, EMAIL.replace("to: [me@example.com]", "to: me@example.com"))
    assert config.email.to == ("me@example.com",)


@pytest.mark.parametrize(
    ("text", "attribute", "expected"),
    [
        ("polling:\n  interval: 90m\n", "interval", timedelta(minutes=90)),
        ("polling:\n  interval: 2h\n", "interval", timedelta(hours=2)),
        ("polling:\n  interval: '45m'\n", "interval", timedelta(minutes=45)),
        ("polling:\n  interval: 1d\n", "interval", timedelta(days=1)),
        ("polling:\n  timeout: 10\n", "timeout", 10.0),
        ("polling:\n  timeout: 2.5\n", "timeout", 2.5),
    ],
)
def test_polling_durations(tmp_path: Path, text: str, attribute: str, expected: object) -> None:
    config = load(tmp_path, text)
    assert getattr(config.polling, attribute) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)), ("2d", timedelta(days=2))],
)
def test_clustering_window(tmp_path: Path, value: object, expected: timedelta) -> None:
    config = load(tmp_path, f"clustering:\n  window: {value}\n")
    assert config.clustering.window == expected


@pytest.mark.parametrize(
    "text",
    ["polling:\n  interval: 90\n", "clustering:\n  window: 12\n", "digest:\n  since: 24\n"],
)
def test_a_duration_needs_its_unit(tmp_path: Path, text: str) -> None:
    """A bare 24 reads as minutes to some and hours to others: say which."""
    with pytest.raises(ConfigError, match="with a unit, such as 90s, 30m, 6h or 7d"):
        load(tmp_path, text)


def test_absurd_durations_are_refused_not_overflowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="more than a century"):
        load(tmp_path, "polling:\n  interval: 99999999999d\n")


def test_digest_since_all_means_no_limit(tmp_path: Path) -> None:
    assert load(tmp_path, "digest:\n  since: all\n").digest.since is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("36h", timedelta(hours=36)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("30s", timedelta(seconds=30)),
        (" 15 m ", timedelta(minutes=15)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", [True, None, [], "soon", "5 hours", "-3h", "h", 90, "90", "²h"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match=r"digest\.since"):
        parse_duration(value, where="digest.since")


def test_every_setting_has_a_type_the_loader_knows() -> None:
    """Each field of each section is read by its declared type: a field of a type the loader
    has no rule for is a bug that shows here, not when someone first sets it."""
    from aggregator.config import _SECTIONS, _coerce, _field_types

    for name, section in _SECTIONS.items():
        for field, kind in _field_types(section).items():
            with pytest.raises(ConfigError, match=re.escape(f"{name}.{field}: expected")):
                _coerce(f"{name}.{field}", kind, object())


# --- paths and feeds ---------------------------------------------------------------------------


def test_relative_database_resolves_against_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    config = load(conf_dir, "database: data/news.db\n")
    assert config.database == conf_dir / "data" / "news.db"


def test_absolute_database_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "x.db"
    config = load(tmp_path, f"database: {target}\n")
    assert config.database == target


def test_feeds_as_strings_and_mappings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        feeds:
          - https://example.com/rss
          - url: http://example.org/atom.xml
            title: Example Org
            tags: [tech, daily]
          - url: https://example.net/feed.json
            tags: solo
        """,
    )
    feeds = config.feeds
    assert feeds == (
        FeedConfig(url="https://example.com/rss"),
        FeedConfig(url="http://example.org/atom.xml", title="Example Org", tags=("tech", "daily")),
        FeedConfig(url="https://example.net/feed.json", tags=("solo",)),
    )


@pytest.fixture
def conf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for the config, while the working directory is another one."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder


def test_relative_feed_path_resolves_against_config_dir(
    conf_dir: Path,
) -> None:
    config = load(conf_dir, "feeds:\n  - feeds/local.xml\n  - url: ../other.rss\n")
    urls = [f.url for f in config.feeds]
    assert urls == [str(conf_dir / "feeds" / "local.xml"), str(conf_dir.parent / "other.rss")]


@pytest.mark.parametrize(
    "url",
    ["http://example.com/rss", "https://example.com/rss?x=1", "file:///srv/feeds/a.xml"],
)
def test_web_and_file_urls_kept_as_is(tmp_path: Path, url: str) -> None:
    config = load(tmp_path, f"feeds:\n  - '{url}'\n")
    assert config.feeds[0].url == url


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/rss", "gopher://example.com/", "javascript://x", "feed://example.com/"],
)
def test_other_schemes_rejected(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="only http, https, file"):
        load(tmp_path, f"feeds:\n  - '{url}'\n")


@pytest.mark.parametrize(
    "feeds",
    [
        ["https://example.com/rss", "https://example.com/rss"],
        ["https://example.com/rss", "{url: 'https://example.com/rss', title: Again}"],
        ["feeds/a.xml", "./feeds/../feeds/a.xml"],
    ],
)
def test_duplicate_feeds_rejected(tmp_path: Path, feeds: list[str]) -> None:
    text = "feeds:\n" + "".join(f"  - {f}\n" for f in feeds)
    with pytest.raises(ConfigError, match=r"feeds\[1\].*twice"):
        load(tmp_path, text)


# --- precedence --------------------------------------------------------------------------------


def test_database_precedence_flag_env_file_default(tmp_path: Path) -> None:
    path = write(tmp_path, "database: from-file.db\n")
    flag, env = tmp_path / "flag.db", tmp_path / "env.db"
    environ = {"AGGREGATOR_DATABASE": str(env)}
    assert load_config(path, database=flag, environ=environ).database == flag
    assert load_config(path, environ=environ).database == env
    assert load_config(path, environ={}).database == tmp_path / "from-file.db"
    bare = write(tmp_path, "feeds: []\n", name="bare.yaml")
    assert load_config(bare, environ={}).database == tmp_path / "aggregator.db"


def test_env_overrides_file_value(tmp_path: Path) -> None:
    path = write(tmp_path, "polling:\n  concurrency: 8\n  per_host: 3\n")
    config = load_config(path, environ={"AGGREGATOR_POLLING_CONCURRENCY": "4"})
    assert config.polling.concurrency == 4
    assert config.polling.per_host == 3  # the rest of the section stays


def test_env_sets_value_absent_from_file(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: []\n")
    environ = {"AGGREGATOR_DIGEST_FORMAT": "markdown", "AGGREGATOR_CLUSTERING_WINDOW": "12h"}
    config = load_config(path, environ=environ)
    assert config.digest.format == "markdown"
    assert config.clustering.window == timedelta(hours=12)


def test_env_value_is_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: []\n")
    with pytest.raises(ConfigError, match=r"polling\.concurrency"):
        load_config(path, environ={"AGGREGATOR_POLLING_CONCURRENCY": "-2"})


def test_env_text_value_is_taken_as_text(tmp_path: Path) -> None:
    """A subject like the default one ("...: {count} stories") must survive the environment."""
    path = write(tmp_path, EMAIL)
    subject = "Daily news: {count} stories"
    config = load_config(path, environ={"AGGREGATOR_EMAIL_SUBJECT": subject})
    assert config.email is not None
    assert config.email.subject == subject


@pytest.mark.parametrize("name", ["AGGREGATOR_FOO_BAR", "AGGREGATOR_POLLING"])
def test_unknown_env_var_is_an_error_naming_it(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "feeds: []\n")
    with pytest.raises(ConfigError, match=name):
        load_config(path, environ={name: "1"})


def test_unknown_key_in_env_section_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: []\n")
    with pytest.raises(ConfigError, match=r"polling\.concurency.*'concurrency'"):
        load_config(path, environ={"AGGREGATOR_POLLING_CONCURENCY": "4"})


def test_cli_env_vars_and_other_prefixes_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "database: file.db\n")
    environ = {
        "AGGREGATOR_CONFIG": str(tmp_path / "other.yaml"),
        "AGGREGATOR_DB": str(tmp_path / "other.db"),
        "HOME": "/nowhere",
        "PATH": "/bin",
    }
    config = load_config(path, environ=environ)
    assert config.database == tmp_path / "file.db"
    assert config.path == path


# --- editing the file --------------------------------------------------------------------------

COMMENTED = """\
# My aggregator settings
database: news.db  # next to this file
feeds:
  - https://a.example/rss  # the first one
  - url: https://b.example/atom
    title: B
polling:
  interval: 30m  # half an hour
"""


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "config.yaml")


def test_add_feed_keeps_comments_and_loads_back(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    add_feed_to_file(path, FeedConfig(url="https://c.example/feed.json"))
    add_feed_to_file(path, FeedConfig(url="https://d.example/rss", title="D", tags=("x", "y")))
    text = path.read_text(encoding="utf-8")
    for comment in ("# My aggregator settings", "# next to this file", "# the first one"):
        assert comment in text
    assert "# half an hour" in text
    config = load_config(path, environ={})
    assert [f.url for f in config.feeds] == [
        "https://a.example/rss",
        "https://b.example/atom",
        "https://c.example/feed.json",
        "https://d.example/rss",
    ]
    assert config.feeds[3] == FeedConfig(url="https://d.example/rss", title="D", tags=("x", "y"))
    assert config.polling.interval == timedelta(minutes=30)
    assert leftovers(tmp_path) == []


def test_add_feed_keeps_comment_of_following_section_in_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds:\n  - https://a.example/rss\n# how often\npolling:\n  interval: 30m\n",
    )
    add_feed_to_file(path, FeedConfig(url="https://b.example/rss"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("polling:") - 1] == "# how often"


@pytest.mark.parametrize("url", ["https://a.example/rss", "https://b.example/atom"])
def test_add_duplicate_feed_refused(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, COMMENTED)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="already"):
        add_feed_to_file(path, FeedConfig(url=url))
    assert path.read_text(encoding="utf-8") == before
    assert leftovers(tmp_path) == []


def test_add_local_feed_matches_relative_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - feeds/local.xml\n")
    with pytest.raises(ConfigError, match="already"):
        add_feed_to_file(path, FeedConfig(url=str(tmp_path / "feeds" / "local.xml")))


def test_add_feed_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.yaml"
    add_feed_to_file(path, FeedConfig(url="https://a.example/rss"))
    assert path.is_file()
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://a.example/rss"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_add_feed_to_file_without_feeds_key(tmp_path: Path) -> None:
    path = write(tmp_path, "# just polling\npolling:\n  concurrency: 4\n")
    add_feed_to_file(path, FeedConfig(url="https://a.example/rss"))
    config = load_config(path, environ={})
    assert [f.url for f in config.feeds] == ["https://a.example/rss"]
    assert config.polling.concurrency == 4
    assert "# just polling" in path.read_text(encoding="utf-8")


def test_remove_feed_keeps_comments_and_others(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    remove_feed_from_file(path, "https://b.example/atom")
    text = path.read_text(encoding="utf-8")
    assert "# My aggregator settings" in text
    assert "# the first one" in text
    assert "# half an hour" in text
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://a.example/rss"]
    assert leftovers(tmp_path) == []


def test_remove_first_feed_keeps_comment_of_the_next(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        feeds:
          # news
          - https://a.example/rss
          # blogs
          - https://b.example/rss
        """,
    )
    remove_feed_from_file(path, "https://a.example/rss")
    text = path.read_text(encoding="utf-8")
    assert "# blogs" in text
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://b.example/rss"]


def test_remove_last_feed_keeps_comment_of_following_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds:\n  - https://a.example/rss\n  - https://b.example/rss\n"
        "# how often\npolling:\n  interval: 30m\n",
    )
    remove_feed_from_file(path, "https://b.example/rss")
    assert "# how often" in path.read_text(encoding="utf-8")
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://a.example/rss"]


def test_remove_relative_local_feed(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - feeds/local.xml\n  - https://a.example/rss\n")
    remove_feed_from_file(path, str(tmp_path / "feeds" / "local.xml"))
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://a.example/rss"]


def test_remove_missing_feed_refused(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"https://z\.example/rss.*not in"):
        remove_feed_from_file(path, "https://z.example/rss")
    assert path.read_text(encoding="utf-8") == before
    assert leftovers(tmp_path) == []


def test_edit_refuses_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        add_feed_to_file(path, FeedConfig(url="https://a.example/rss"))
    assert path.read_text(encoding="utf-8") == "feeds: [unclosed\n"
    assert leftovers(tmp_path) == []


def test_edit_keeps_file_mode(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    path.chmod(0o600)
    add_feed_to_file(path, FeedConfig(url="https://c.example/rss"))
    assert path.stat().st_mode & 0o777 == 0o600


POLL = "polling:\n  per_host: 1\n"
EDIT_LAYOUTS = {
    "flow": "feeds: [https://a.example/rss, https://b.example/rss]  # two\n" + POLL,
    "null": "# none yet\nfeeds:\n" + POLL,
    "empty-flow": "feeds: []  # none yet\n" + POLL,
    "unindented": "feeds:\n- https://a.example/rss\n- https://b.example/rss\n" + POLL,
    "indent-4": "feeds:\n    - https://a.example/rss\n    - https://b.example/rss\n" + POLL,
    "no-final-newline": POLL + "feeds:\n  - https://a.example/rss",
    "feeds-last": POLL + "feeds:\n  - https://a.example/rss\n",
}


@pytest.mark.parametrize("text", EDIT_LAYOUTS.values(), ids=EDIT_LAYOUTS.keys())
def test_add_then_remove_in_any_layout(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    before = [f.url for f in load_config(path, environ={}).feeds]
    tricky = FeedConfig(url="https://c.example/rss", title="News: #1 & more", tags=("a b", "x"))
    add_feed_to_file(path, tricky)
    config = load_config(path, environ={})
    assert [f.url for f in config.feeds] == [*before, "https://c.example/rss"]
    assert config.feeds[-1] == tricky
    assert config.polling.per_host == 1
    for comment in ("# two", "# none yet"):
        if comment in text:
            assert comment in path.read_text(encoding="utf-8")
    remove_feed_from_file(path, "https://c.example/rss")
    config = load_config(path, environ={})
    assert [f.url for f in config.feeds] == before
    assert config.polling.per_host == 1
    if before:
        remove_feed_from_file(path, before[0])
        assert [f.url for f in load_config(path, environ={}).feeds] == before[1:]
    assert leftovers(tmp_path) == []


def test_remove_multiline_entry_removes_all_its_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        feeds:
          - url: https://a.example/rss
            title: A
            # the tags we use
            tags:
              - one
              - two
          # keep this one
          - https://b.example/rss
        polling:
          per_host: 1
        """,
    )
    remove_feed_from_file(path, "https://a.example/rss")
    text = path.read_text(encoding="utf-8")
    assert "title: A" not in text
    assert "- one" not in text
    assert "# keep this one" in text
    config = load_config(path, environ={})
    assert [f.url for f in config.feeds] == ["https://b.example/rss"]
    assert config.polling.per_host == 1


def test_add_to_existing_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    add_feed_to_file(path, FeedConfig(url="https://a.example/rss"))
    assert [f.url for f in load_config(path, environ={}).feeds] == ["https://a.example/rss"]


def test_edit_refuses_non_mapping_file(tmp_path: Path) -> None:
    path = write(tmp_path, "- https://a.example/rss\n")
    with pytest.raises(ConfigError, match="mapping"):
        add_feed_to_file(path, FeedConfig(url="https://b.example/rss"))
    with pytest.raises(ConfigError):
        remove_feed_from_file(path, "https://a.example/rss")
    assert path.read_text(encoding="utf-8") == "- https://a.example/rss\n"


def test_feeds_list_items_with_the_dash_alone_on_a_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "feeds:\n  - https://a.example/rss\n  -\n    url: https://b.example/rss\n"
        "    title: B\npolling: {}\n"
    )
    add_feed_to_file(path, FeedConfig("https://c.example/rss"))
    remove_feed_from_file(path, "https://b.example/rss")
    assert path.read_text() == (
        "feeds:\n  - https://a.example/rss\n  - https://c.example/rss\npolling: {}\n"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  subject: 'News {day}'\n", "email.subject: unknown placeholder {day}"),
        ("  subject: 'News {top.__class__}'\n", "unknown placeholder {top.__class__}"),
        ("  subject: 'News {top:>99999}'\n", "write {top} plainly, without a format"),
        ("  subject: 'News {top'\n", "email.subject: "),
        ("  username: me\n  security: none\n", "never sends credentials in the clear"),
        ("  password_env: SMTP_PASSWORD\n", "a password needs a username"),
        ("  timeout: 0\n", "email.timeout"),
    ],
)
def test_bad_email_settings_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, EMAIL + extra)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "not an address"),
        ("from", "a@example.org, b@example.org"),
        ("to", "[me@example.com, nobody]"),
        ("to", "['me@example.com\\r\\nBcc: x@evil.example']"),
        ("to", "[rëader@example.com]"),
    ],
)
def test_addresses_are_checked(tmp_path: Path, field: str, value: str) -> None:
    text = re.sub(rf"(?m)^  {field}: .*$", f"  {field}: {value}", EMAIL)
    with pytest.raises(ConfigError, match=f"email.{field}"):
        load(tmp_path, text)


def test_a_display_name_and_a_ca_file_beside_the_config(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        EMAIL.replace("from: news@example.com", "from: 'Morning News <news@example.com>'")
        + "  ca_file: relay-ca.pem\n  subject: '{date}: {stories} ({new} new, {grown} grown)'\n",
    )
    assert config.email is not None
    assert config.email.from_addr == "Morning News <news@example.com>"
    assert config.email.ca_file == tmp_path / "relay-ca.pem"
