"""From the first run to daily use: `init`, finding the config, the database a command may
open, the errors a new user meets, and the habits of the command line (issue 18)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.config import load_config
from cli import cli

from .conftest import OFFLINE, ROOT, FeedServer, offline, rss


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no config anywhere: an empty working folder and config folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in list(os.environ):
        if name.startswith("AGGREGATOR_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "xdg" / "aggregator"


# --- init -------------------------------------------------------------------------------------


def test_init_writes_the_starter_config_and_prints_the_next_three_steps(
    home: Path, runner: CliRunner
) -> None:
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    path = home / "config.yaml"
    text = path.read_text(encoding="utf-8")
    assert "\n# email:" in text and "#   smtp_host:" in text  # the email block, commented
    steps = result.stdout
    assert str(path) in steps
    assert "1. aggregator poll" in steps and "2. aggregator browse" in steps
    cron = re.search(r"^\s+(\*/30 \* \* \* \*\s+(\S+).* --quiet run)$", steps, flags=re.M)
    assert cron, steps
    assert Path(cron.group(2).split()[0]).is_absolute()  # cron's PATH is bare
    # The config is loaded and validated: real feeds, each titled and tagged, the digest.
    config = load_config(path, environ={})
    assert len(config.feeds) >= 15
    assert all(f.url.startswith("https://") and f.title and f.tags for f in config.feeds)
    assert config.email is None and config.digest.format == "text"
    assert config.database == home / "aggregator.db"
    # Now commands find it with no --config.
    listed = runner.invoke(cli, ["feeds", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == len(config.feeds)


def test_the_repositorys_config_yaml_is_the_starter_init_writes() -> None:
    """The top-level config.yaml (a fixed part of the project) is the reference config; init
    writes the packaged copy, so an installed aggregator has it too. They must not drift."""
    packaged = ROOT / "aggregator" / "templates" / "config.yaml"
    assert (ROOT / "config.yaml").read_text("utf-8") == packaged.read_text("utf-8")


def test_init_refuses_to_overwrite(home: Path, runner: CliRunner) -> None:
    home.mkdir(parents=True)
    (home / "config.yaml").write_text("feeds: []\n# mine\n")
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 2
    assert "exists already" in result.stderr and "never overwrites" in result.stderr
    assert (home / "config.yaml").read_text() == "feeds: []\n# mine\n"


def test_init_at_a_path_names_it_in_every_step(home: Path, runner: CliRunner) -> None:
    target = home.parent / "news" / "config.yaml"
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert target.is_file()
    assert result.stdout.count(f"--config {target}") == 3
    assert not (home / "config.yaml").exists()


def test_the_starter_config_polls_through_a_server_standing_in_for_the_real_hosts(
    home: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    """Every feed of the starter answers (here from loopback, each at its host's own path), and
    one poll stores them all and makes stories."""
    assert runner.invoke(cli, ["init"]).exit_code == 0
    path = home / "config.yaml"
    text = path.read_text(encoding="utf-8")
    urls = re.findall(r"^  - url: (https://\S+)$", text, flags=re.M)
    for n, url in enumerate(urls):
        stand_in = "/" + url.removeprefix("https://")
        items = [
            {
                "guid": f"{stand_in}/{k}",
                "link": f"https://outlet{n}.example/{k}",
                "title": ["Harbour strike closes port of Velmora for a third day",
                          f"Local council {n} budget vote number {k}"][k],
                "pubDate": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
            }
            for k in range(2)
        ]  # fmt: skip
        feed_server.add(stand_in, body=rss(f"Outlet {n}", items))
        text = text.replace(f"url: {url}\n", f"url: {feed_server.base}{stand_in}\n")
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["poll"])
    assert result.exit_code == 0, result.output
    assert f"{len(urls)} feeds: {len(urls)} ok" in result.stderr
    stories = json.loads(runner.invoke(cli, ["stories", "--json"]).stdout)
    assert stories and stories[0]["sources"] == len(urls)


# --- where the config and the database are ----------------------------------------------------


def test_no_config_anywhere_says_run_init(home: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["stories"])
    assert result.exit_code == 2
    assert f"no config found at {home / 'config.yaml'}" in result.stderr
    assert "run `aggregator init`" in result.stderr
    assert not home.exists()  # and no database was made behind the user's back


def test_an_explicit_db_in_a_missing_folder_is_an_error(tmp_path: Path, runner: CliRunner) -> None:
    db = tmp_path / "no" / "such" / "agg.db"
    result = runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(db), "stories"])
    assert result.exit_code == 2
    assert f"the folder {db.parent} does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


def test_the_default_database_folder_is_still_created(home: Path, runner: CliRunner) -> None:
    assert runner.invoke(cli, ["init"]).exit_code == 0
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("path: aggregator.db", "path: data/agg.db"))
    assert runner.invoke(cli, ["stories"]).exit_code == 0
    assert (home / "data" / "agg.db").is_file()


def test_a_database_of_another_application_is_refused_untouched(
    tmp_path: Path, runner: CliRunner
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
        conn.execute("INSERT INTO contacts VALUES ('Ada')")
    conn.close()
    before = other.read_bytes()
    result = runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(other), "poll"])
    assert result.exit_code == 3
    assert "database of another application" in result.stderr
    assert other.read_bytes() == before
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["contacts"]


def _as_a_reader_only(folder: Path) -> list[str]:
    """A command prefix under which ``folder`` (holding a database) may only be read.

    Not root: the modes of the folder and its files say so. Root may write whatever the modes
    say, so the command runs in a mount namespace of its own where the folder is a read-only
    bind mount (skipped where that is not allowed).
    """
    if os.geteuid() != 0:
        for item in folder.iterdir():
            item.chmod(0o444)
        folder.chmod(0o555)
        return []
    prefix = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*prefix, "sh", "-c", f"! touch {folder}/probe"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("as root, a read-only database needs unshare and a bind mount")
    return prefix


@pytest.mark.parametrize(
    "args",
    [
        ["stories", "--since", "all", "--json"],
        ["story", "9"],
        ["articles", "--since", "all"],
        ["search", "quake"],
        ["feeds", "list"],
        ["digest", "--dry-run", "--since", "all"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_read_only_commands_work_on_a_database_the_user_may_only_read(
    tmp_path: Path, runner: CliRunner, args: list[str]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "agg.db"
    offline(runner, db, "run")
    expected = offline(runner, db, *args).stdout
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    as_reader = _as_a_reader_only(folder)
    command = [*as_reader, sys.executable, "cli.py", "--config", str(OFFLINE), "--db", str(db)]
    try:
        result = subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        # Writing is refused with the reason, not with a traceback.
        poll = subprocess.run([*command, "read", "9"], cwd=ROOT, capture_output=True, text=True)
        assert poll.returncode == 3 and "read-only" in poll.stderr, poll.stderr
    finally:
        folder.chmod(0o755)
        for item in folder.iterdir():
            item.chmod(0o644)


# --- errors -----------------------------------------------------------------------------------


def test_a_bad_environment_value_names_the_variable_and_the_near_miss(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATOR_POLLING_CONCURENCY", "8")
    monkeypatch.setenv("AGGREGATOR_POLLING_TIMEOUT", "soon")
    monkeypatch.setenv("AGGREGATOR_POLING_INTERVAL", "5m")
    result = runner.invoke(cli, ["--config", str(OFFLINE), "stories"])
    assert result.exit_code == 2
    errors = result.stderr
    assert (
        "AGGREGATOR_POLLING_CONCURENCY: unknown key polling.concurency "
        "(did you mean 'concurrency'?)" in errors
    )
    assert "AGGREGATOR_POLLING_TIMEOUT: polling.timeout: expected a number" in errors
    assert "AGGREGATOR_POLING_INTERVAL: not a setting aggregator knows " in errors
    assert "(did you mean AGGREGATOR_POLLING_INTERVAL?)" in errors


def test_a_bad_config_reports_every_error_at_once_with_file_and_line(
    tmp_path: Path, runner: CliRunner
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "database: agg.db\n"  # 1
        "polling:\n"  # 2
        "  concurency: 4\n"  # 3
        "  timeout: -1\n"  # 4
        "feeds:\n"  # 5
        "  - https://a.example/rss\n"  # 6
        "  - url: ftp://b.example/rss\n"  # 7
        "digest:\n"  # 8
        "  format: pdf\n"  # 9
        "colour: yes\n"  # 10
    )
    result = runner.invoke(cli, ["--config", str(path), "stories"])
    assert result.exit_code == 2
    lines = result.stderr.removeprefix("Error: ").splitlines()
    assert sorted(lines) == sorted(
        [
            f"{path}:3: polling.concurency: unknown key (did you mean 'concurrency'?); "
            "known keys: adaptive, alert_after, concurrency, interval, max_bytes, max_redirects, "
            "parse_workers, per_host, timeout, user_agent",
            f"{path}:4: polling.timeout: must be more than 0 seconds",
            f"{path}:7: feeds[1].url: feed ftp://b.example/rss: only http, https, file URLs "
            "and paths are supported",
            f"{path}:9: digest.format: must be text, markdown or html",
            f"{path}:10: colour: unknown key; known keys: clustering, database, dedupe, digest, "
            "email, feeds, mute, polling",
        ]
    )


def test_yaml_errors_name_the_file_and_line(tmp_path: Path, runner: CliRunner) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("database: agg.db\nfeeds:\n\t- https://a.example/rss\n")
    result = runner.invoke(cli, ["--config", str(path), "stories"])
    assert result.exit_code == 2
    assert f"{path}:3:1: not valid YAML" in result.stderr, result.stderr
    assert "<unicode string>" not in result.stderr and "<file>" not in result.stderr


@pytest.mark.parametrize("command", ["search", "articles", "stories"])
def test_a_huge_limit_means_all(offline_db: Path, runner: CliRunner, command: str) -> None:
    words = ["quake"] if command != "stories" else []
    args = [command, *words, "--since", "all", "--json", "--limit"]
    every = json.loads(offline(runner, offline_db, *args, "0").stdout)
    huge = json.loads(offline(runner, offline_db, *args, "99999999999999999999").stdout)
    assert huge == every and every


def test_search_takes_its_words_unquoted(offline_db: Path, runner: CliRunner) -> None:
    quoted = offline(runner, offline_db, "search", "magnitude quake", "--json").stdout
    unquoted = offline(runner, offline_db, "search", "magnitude", "quake", "--json").stdout
    assert unquoted == quoted and json.loads(unquoted)
    articles = offline(runner, offline_db, "articles", "magnitude", "quake", "--since", "all")
    assert "quake" in articles.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--feed", "Nope"], "--feed Nope: no such feed"),
        (["--tag", "nope"], "--tag nope: no feed has this tag"),
    ],
)
def test_stories_says_when_no_such_feed_or_tag_exists(
    offline_db: Path, runner: CliRunner, option: list[str], message: str
) -> None:
    result = runner.invoke(
        cli, ["--config", str(OFFLINE), "--db", str(offline_db), "stories", *option]
    )
    assert result.exit_code == 0 and f"note: {message}" in result.stderr
    assert result.stdout.startswith("No stories.")
    # A feed named by its title, and a tag it has, draw no note.
    feed = json.loads(offline(runner, offline_db, "feeds", "list", "--json").stdout)[0]
    assert feed["tags"]
    for known in (["--feed", feed["title"]], ["--tag", feed["tags"][0]]):
        assert offline(runner, offline_db, "stories", *known).stderr == ""


def test_since_without_a_unit_says_what_it_wants(offline_db: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["--config", str(OFFLINE), "--db", str(offline_db), "stories", "--since", "5"]
    )
    assert result.exit_code == 2
    assert "a duration with a unit such as 6h or 7d, or all; got 5" in result.stderr


def test_ctrl_c_in_poll_exits_130_and_the_next_poll_carries_on(
    tmp_path: Path, feed_server: FeedServer, runner: CliRunner
) -> None:
    now = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    fast = feed_server.add(
        "/fast.xml",
        body=rss("Fast", [{"guid": "f1", "title": "Harbour strike closes port", "pubDate": now}]),
    )
    slow = feed_server.add(
        "/slow.xml",
        body=rss("Slow", [{"guid": "s1", "title": "Harbour strike closes port", "pubDate": now}]),
        delay=30,
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"database: agg.db\nfeeds: [{fast}, {slow}]\npolling:\n  timeout: 60\n")
    process = subprocess.Popen(
        [sys.executable, "cli.py", "--config", str(config), "poll"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 20
    while not feed_server.hits("/slow.xml") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 130, errors
    assert "interrupted" in errors and "Traceback" not in errors
    feed_server.routes["/slow.xml"].delay = 0
    again = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
    assert again.exit_code == 0, again.output
    assert "2 feeds: 2 ok" in again.stderr
    stories = json.loads(runner.invoke(cli, ["--config", str(config), "stories", "--json"]).stdout)
    assert [s["sources"] for s in stories] == [2]


# --- feeds ------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title>Outlet</title>
<link rel="stylesheet" href="/style.css">
{links}
</head><body><p>News</p></body></html>"""


def _page(*links: str) -> bytes:
    return PAGE.format(links="\n".join(links)).encode()


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("database: agg.db\nfeeds: []\n")
    return path


def test_feeds_add_of_an_address_without_a_scheme_tries_https_then_http(
    empty_config: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    url = feed_server.add("/rss", body=rss("Harbour Sentinel", [{"guid": "1", "title": "Hi"}]))
    typed = url.removeprefix("http://")  # 127.0.0.1:PORT/rss: the server speaks plain HTTP
    result = runner.invoke(cli, ["--config", str(empty_config), "feeds", "add", typed])
    assert result.exit_code == 0, result.output
    config = load_config(empty_config, environ={})
    assert [(f.url, f.title) for f in config.feeds] == [(url, "Harbour Sentinel")]


def test_feeds_add_of_a_web_page_adds_the_feed_it_advertises(
    empty_config: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    feed_server.add(
        "/feeds/all.atom", body=rss("Outlet, everything", [{"guid": "1", "title": "a"}])
    )
    page = feed_server.add(
        "/",
        body=_page('<link rel="alternate" type="application/atom+xml" href="feeds/all.atom">'),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    result = runner.invoke(cli, ["--config", str(empty_config), "feeds", "add", page])
    assert result.exit_code == 0, result.output
    assert f"advertised by {page}" in result.stdout
    feed = load_config(empty_config, environ={}).feeds[0]
    assert feed.url == feed_server.url("/feeds/all.atom")
    assert feed.title == "Outlet, everything"  # the feed's own title, stored for --feed


def test_feeds_add_of_a_page_with_several_feeds_lists_them_to_pick_from(
    empty_config: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    feed_server.add("/world.xml", body=rss("World", [{"guid": "1", "title": "a"}]))
    feed_server.add("/sport.json", body=b'{"version": "https://jsonfeed.org/version/1.1", '
                    b'"title": "Sport", "items": [{"id": "1", "title": "b"}]}')  # fmt: skip
    page = feed_server.add(
        "/news",
        body=_page(
            '<link rel="alternate" type="application/rss+xml" title="World" href="/world.xml">',
            '<LINK REL="alternate" TYPE="application/feed+json" TITLE="Sport" HREF="sport.json">',
            '<link rel="alternate" hreflang="fr" href="/fr/news">',  # a translation, not a feed
        ),
        headers={"Content-Type": "text/html"},
    )
    args = ["--config", str(empty_config), "feeds", "add", page]
    listed = runner.invoke(cli, args)
    assert listed.exit_code == 2
    assert "advertises 2 feeds" in listed.stderr and "--pick N" in listed.stderr
    assert f"1. {feed_server.url('/world.xml')}  (RSS: World)" in listed.stderr
    assert f"2. {feed_server.url('/sport.json')}  (JSON Feed: Sport)" in listed.stderr
    assert load_config(empty_config, environ={}).feeds == ()
    wrong = runner.invoke(cli, [*args, "--pick", "3"])
    assert wrong.exit_code == 2 and "--pick 3 is not one of them" in wrong.stderr
    picked = runner.invoke(cli, [*args, "--pick", "2", "--tag", "sport"])
    assert picked.exit_code == 0, picked.output
    feeds = load_config(empty_config, environ={}).feeds
    assert [(f.url, f.title, f.tags) for f in feeds] == [
        (feed_server.url("/sport.json"), "Sport", ("sport",))
    ]


def test_feeds_remove_takes_a_title(
    empty_config: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    url = feed_server.add("/a.xml", body=rss("Alpine Courier", [{"guid": "1", "title": "a"}]))
    other = feed_server.add("/b.xml", body=rss("Other", [{"guid": "1", "title": "a"}]))
    for feed in (url, other):
        assert (
            runner.invoke(cli, ["--config", str(empty_config), "feeds", "add", feed]).exit_code == 0
        )
    result = runner.invoke(
        cli, ["--config", str(empty_config), "feeds", "remove", "alpine courier"]
    )
    assert result.exit_code == 0, result.output
    assert f"Removed {url}" in result.stdout
    assert [f.url for f in load_config(empty_config, environ={}).feeds] == [other]
    missing = runner.invoke(cli, ["--config", str(empty_config), "feeds", "remove", "Nope"])
    assert missing.exit_code == 2 and "is not in" in missing.stderr


def test_feeds_list_says_why_a_feed_fails_in_one_line(
    empty_config: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    bad = feed_server.add("/bad.xml", status=500, body=b"x" * 400)
    ok = feed_server.add("/ok.xml", body=rss("Fine", [{"guid": "1", "title": "a"}]))
    empty_config.write_text(f"database: agg.db\nfeeds: [{bad}, {ok}]\n")
    assert runner.invoke(cli, ["--config", str(empty_config), "poll"]).exit_code == 0
    text = runner.invoke(cli, ["--config", str(empty_config), "feeds", "list"]).stdout
    block = text.split(bad, 1)[1].split("\n\n")[0].splitlines()
    error_lines = [line for line in block if "HTTP 500" in line]
    assert len(error_lines) == 1, text
    assert error_lines[0].startswith("    1 error in a row; last at ")
    assert len(error_lines[0]) <= 80


def test_feeds_export_then_import_round_trips_local_feeds_too(
    tmp_path: Path, runner: CliRunner
) -> None:
    local = tmp_path / "feeds" / "local.xml"
    local.parent.mkdir()
    local.write_bytes(rss("Local", [{"guid": "1", "title": "a"}]))
    first = tmp_path / "first.yaml"
    first.write_text(
        "database: agg.db\nfeeds:\n"
        f"  - {{url: {local}, title: Local, tags: [home, mine]}}\n"
        "  - {url: 'https://a.example/rss', title: Alpha, tags: [world]}\n"
        "  - https://b.example/rss\n"
    )
    exported = tmp_path / "subs.opml"
    result = runner.invoke(cli, ["--config", str(first), "feeds", "export", "-o", str(exported)])
    assert result.exit_code == 0, result.output
    # Into the same config: every feed is already present, none skipped.
    same = runner.invoke(cli, ["--config", str(first), "feeds", "import", str(exported)])
    assert same.stdout == f"Imported 0 feeds (3 already present, 0 skipped) to {first}\n"
    assert same.stderr == ""
    # Into a new config: the same feeds, titles and tags, the local one included when asked.
    second = tmp_path / "second.yaml"
    second.write_text("database: agg.db\nfeeds: []\n")
    args = ["--config", str(second), "feeds", "import", str(exported)]
    without = runner.invoke(cli, [*args, "--dry-run"])
    assert f"skipped {local.as_uri()}: not an http(s) URL" in without.stderr
    result = runner.invoke(cli, [*args, "--local-files"])
    assert result.stdout == f"Imported 3 feeds (0 already present, 0 skipped) to {second}\n"
    assert load_config(second, environ={}).feeds == load_config(first, environ={}).feeds


# --- corrections ------------------------------------------------------------------------------


def test_moving_a_split_off_article_back_does_not_undo_the_split(
    offline_db: Path, runner: CliRunner
) -> None:
    """The README's rule: a story split off is never merged with its story again. Moving its
    last article back would have emptied it into an alias of the other story: a merge."""
    story = next(
        s
        for s in json.loads(
            offline(runner, offline_db, "stories", "--json", "--since", "all").stdout
        )
        if s["size"] >= 3
    )
    article = story["articles"][-1]["id"]
    split = json.loads(
        offline(
            runner, offline_db, "story", "split", str(story["id"]), str(article), "--json"
        ).stdout
    )
    new = split["id"]
    assert new != story["id"] and [a["id"] for a in split["articles"]] == [article]
    back = runner.invoke(
        cli,
        ["--config", str(OFFLINE), "--db", str(offline_db), "story", "move", str(article),
         "--to", str(story["id"])],
    )  # fmt: skip
    assert back.exit_code == 1
    assert f"story {new} was split off story {story['id']}" in back.stderr
    assert f"aggregator story merge {story['id']} {new}" in back.stderr
    # Nothing moved: both stories are as the split left them.
    kept = json.loads(offline(runner, offline_db, "story", str(new), "--json").stdout)
    assert kept["id"] == new and [a["id"] for a in kept["articles"]] == [article]
    # The merge the message names undoes the split, on purpose.
    offline(runner, offline_db, "story", "merge", str(story["id"]), str(new))
    merged = json.loads(offline(runner, offline_db, "story", str(new), "--json").stdout)
    assert merged["id"] == story["id"] and article in [a["id"] for a in merged["articles"]]


# --- ids --------------------------------------------------------------------------------------


def test_article_ids_and_story_ids_cannot_be_confused_in_text(
    offline_db: Path, runner: CliRunner
) -> None:
    story = json.loads(offline(runner, offline_db, "stories", "--json", "--limit", "1").stdout)[0]
    article = story["articles"][0]
    assert isinstance(story["id"], int) and isinstance(article["id"], int)  # JSON: numbers
    text = offline(runner, offline_db, "story", str(story["id"])).stdout
    assert text.startswith(f"[{story['id']}] ")
    assert f"  [a{article['id']}] " in text
    listed = offline(runner, offline_db, "articles", "--since", "all", "--limit", "0").stdout
    assert f"[a{article['id']}] {article['title']}" in listed
    assert not re.search(r"^\[\d+\]", listed, flags=re.M)
    # Commands take the id as it is shown: a3 is an article wherever it is given.
    result = offline(runner, offline_db, "read", f"a{article['id']}")
    assert result.stdout == "1 article marked read\n"
    after = json.loads(offline(runner, offline_db, "story", str(story["id"]), "--json").stdout)
    assert [a["read"] for a in after["articles"]] == [True] + [False] * (len(after["articles"]) - 1)
    wrong = runner.invoke(
        cli, ["--config", str(OFFLINE), "--db", str(offline_db), "story", f"a{article['id']}"]
    )
    assert wrong.exit_code == 2 and "is an article; this takes a story id" in wrong.stderr
