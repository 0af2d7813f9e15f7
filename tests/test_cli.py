"""The command line, through click's CliRunner, on the offline example and a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import sqlite_utils
from click.testing import CliRunner

from cli import cli

from .conftest import EXAMPLES, OFFLINE, ROOT, FeedServer, invoke, offline, rss


def test_run_on_the_offline_example_shows_multi_source_stories(
    tmp_path: Path, runner: CliRunner
) -> None:
    result = invoke(runner, "--config", str(OFFLINE), "--db", str(tmp_path / "x.db"), "run")
    assert result.exit_code == 0
    assert "7 feeds: 7 ok, 0 not modified, 0 failed" in result.stderr
    digest = result.stdout
    assert digest.startswith("aggregator digest:")
    counts = [int(n) for n in re.findall(r"^   (\d+) sources:", digest, flags=re.M)]
    assert len(counts) >= 3 and all(n >= 2 for n in counts)
    assert "Velmora" in digest and "Norvania" in digest and "Quillon" in digest
    # the unrelated items stay out of the digest
    assert "garlic" not in digest.lower()


def test_stories_json_contract(offline_db: Path, runner: CliRunner) -> None:
    stories = json.loads(offline(runner, offline_db, "stories", "--json").stdout)
    assert stories, "the offline example has multi-source stories"
    for story in stories:
        assert {
            "id",
            "title",
            "size",
            "sources",
            "first_seen",
            "last_seen",
            "terms",
            "status",
            "articles",
        } <= set(story)
        assert story["status"] in ("new", "growing", "quiet")
        assert story["size"] >= 2 and story["size"] == len(story["articles"])
        assert story["sources"] >= 2
        assert story["first_seen"].endswith("Z") and story["first_seen"] <= story["last_seen"]
        for article in story["articles"]:
            assert {"id", "title", "url", "feed", "published", "duplicates"} <= set(article)
            assert article["story_id"] == story["id"]


def test_stories_filters(offline_db: Path, runner: CliRunner) -> None:
    everything = json.loads(
        offline(runner, offline_db, "stories", "--json", "--min-size", "1", "--limit", "0").stdout
    )
    assert any(s["size"] == 1 for s in everything)
    two = json.loads(offline(runner, offline_db, "stories", "--json", "--limit", "2").stdout)
    assert len(two) == 2
    recent = json.loads(offline(runner, offline_db, "stories", "--json", "--since", "1h").stdout)
    every = json.loads(offline(runner, offline_db, "stories", "--json", "--since", "all").stdout)
    assert [s["id"] for s in recent] == [s["id"] for s in every]
    bad = runner.invoke(cli, ["--config", str(OFFLINE), "stories", "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.stderr


def test_story_detail(offline_db: Path, runner: CliRunner) -> None:
    top = json.loads(offline(runner, offline_db, "stories", "--json").stdout)[0]
    detail = json.loads(offline(runner, offline_db, "story", str(top["id"]), "--json").stdout)
    assert detail == top
    text = offline(runner, offline_db, "story", str(top["id"])).stdout
    assert top["title"] in text
    for article in top["articles"]:
        assert article["title"][:40] in text.replace("\n  ", " ")


def test_missing_story_is_a_clear_error(offline_db: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["--config", str(OFFLINE), "--db", str(offline_db), "story", "99999"]
    )
    assert result.exit_code == 1
    assert "no story with id 99999" in result.stderr
    assert "Traceback" not in result.output


def test_articles_json_lists_cross_feed_duplicates(offline_db: Path, runner: CliRunner) -> None:
    articles = json.loads(
        offline(runner, offline_db, "articles", "--json", "--since", "all", "--limit", "0").stdout
    )
    assert {"id", "title", "url", "feed", "published", "story_id", "duplicates"} <= set(articles[0])
    with_copies = [a for a in articles if a["duplicates"]]
    assert with_copies, "the example plants one wire story in two feeds"
    copy = with_copies[0]["duplicates"][0]
    assert set(copy) == {"url", "feed"} and copy["feed"] != with_copies[0]["feed"]
    # the planted same-guid-twice item is stored once
    titles = [a["title"] for a in articles]
    assert len(titles) == len(set(titles))


def test_search(offline_db: Path, runner: CliRunner) -> None:
    found = json.loads(offline(runner, offline_db, "search", "ceasefire", "--json").stdout)
    assert found and all("ceasefire" in (a["title"] + " ").lower() or a["story_id"] for a in found)
    assert json.loads(offline(runner, offline_db, "search", "zzzyxq", "--json").stdout) == []
    # FTS5 syntax in user input is searched for, not parsed
    assert offline(runner, offline_db, "search", 'AND "(').exit_code == 0


def test_feeds_list_json(offline_db: Path, runner: CliRunner) -> None:
    feeds = json.loads(offline(runner, offline_db, "feeds", "list", "--json").stdout)
    assert len(feeds) == 7
    for feed in feeds:
        assert feed["status"] == "ok" and feed["error_count"] == 0
        assert feed["item_count"] > 0 and feed["last_success"].endswith("Z")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_digest_formats(offline_db: Path, runner: CliRunner, fmt: str) -> None:
    out = offline(runner, offline_db, "digest", "--format", fmt, "--since", "all").stdout
    assert "Velmora" in out
    if fmt == "html":
        assert out.lstrip().startswith("<!DOCTYPE html>") and '<a href="https://' in out
    if fmt == "markdown":
        assert out.startswith("# ") and "](<https://" in out


def test_database_opens_in_sqlite_utils(offline_db: Path) -> None:
    db = sqlite_utils.Database(offline_db)
    assert {"feeds", "articles", "items", "stories", "story_articles", "articles_fts"} <= set(
        db.table_names()
    )
    assert db.journal_mode == "wal"
    out = subprocess.run(
        [sys.executable, "-m", "sqlite_utils", "tables", str(offline_db), "--counts"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"table": "articles"' in out


DATASETTE_CHECK = """
import asyncio, json, sys
from datasette.app import Datasette

async def main():
    ds = Datasette([sys.argv[1]])
    name = next(iter(ds.databases.keys() - {"_internal", "_memory"}))
    stories = await ds.client.get(f"/{name}/stories.json?_shape=array&_size=max")
    found = await ds.client.get(f"/{name}/articles.json?_search=ceasefire&_shape=array")
    answer = [stories.status_code, len(stories.json()), found.status_code, len(found.json())]
    print(json.dumps(answer))

asyncio.run(main())
"""


def test_database_opens_in_datasette(offline_db: Path) -> None:
    pytest.importorskip("datasette", reason="datasette is in the test extra")
    out = subprocess.run(
        [sys.executable, "-c", DATASETTE_CHECK, str(offline_db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stories_status, stories, search_status, hits = json.loads(out)
    assert (stories_status, search_status) == (200, 200)
    assert stories > 0 and hits > 0  # Datasette finds the FTS5 table by itself


def test_feeds_add_checks_and_remove(
    tmp_path: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# my precious comment\ndatabase: agg.db  # beside me\nfeeds: []\n")
    good = feed_server.add("/good.xml", body=rss("Good", [{"guid": "1", "title": "Hi"}]))
    feed_server.add(
        "/page", body=b"<html><body>hi</body></html>", headers={"Content-Type": "text/html"}
    )
    args = ["--config", str(path)]
    result = runner.invoke(cli, [*args, "feeds", "add", feed_server.url("/page")])
    assert result.exit_code == 1 and "HTML page, not a feed" in result.stderr
    result = runner.invoke(cli, [*args, "feeds", "add", good, "--tag", "test"])
    assert result.exit_code == 0, result.output
    assert "Good, 1 item " in result.stdout
    text = path.read_text()
    assert good in text and "my precious comment" in text
    again = runner.invoke(cli, [*args, "feeds", "add", good])
    assert again.exit_code == 2 and "already" in again.stderr
    assert runner.invoke(cli, [*args, "feeds", "remove", good]).exit_code == 0
    assert good not in path.read_text() and "my precious comment" in path.read_text()


def test_poll_exits_zero_with_failed_feeds_summed_on_stderr(
    runner: CliRunner, feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    ok = feed_server.add("/ok.xml", body=rss("Ok", [{"guid": "1", "title": "Hello there"}]))
    path = write_config([ok, feed_server.url("/missing.xml")])
    result = runner.invoke(cli, ["--config", str(path), "poll"])
    assert result.exit_code == 0
    assert "missing.xml: HTTP 404" in result.stderr
    assert "2 feeds: 1 ok, 0 not modified, 1 failed; 1 new article in" in result.stderr


def test_quiet_poll_prints_nothing_even_with_failed_feeds(
    runner: CliRunner, feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    ok = feed_server.add("/ok.xml", body=rss("Ok", [{"guid": "1", "title": "Hello there"}]))
    config = write_config([ok, feed_server.url("/missing.xml")])
    result = runner.invoke(cli, ["--config", str(config), "-q", "poll"])
    assert result.exit_code == 0 and result.output == ""
    listed = runner.invoke(cli, ["--config", str(config), "feeds", "list", "--json"])
    assert [f["error_count"] for f in json.loads(listed.stdout)] == [0, 1]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "polling:\n  concurency: 4\n",
            "polling.concurency: unknown key (did you mean 'concurrency'?)",
        ),
        ("clustering:\n  threshold: 3\n", "clustering.threshold: must be between 0 and 1"),
        ("feeds: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_config_exits_2_with_the_path(
    tmp_path: Path, runner: CliRunner, yaml_text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    result = runner.invoke(cli, ["--config", str(path), "stories"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_config_file_is_an_error(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--config", str(tmp_path / "nope.yaml"), "stories"])
    assert result.exit_code == 2 and "no such config file" in result.stderr


def test_unwritable_database_exits_3(tmp_path: Path, runner: CliRunner) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(blocker / "x.db"), "poll"])
    assert result.exit_code == 3 and "cannot open the database" in result.stderr


def test_env_and_flag_precedence_for_the_database(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(env_db))
    assert runner.invoke(cli, ["--config", str(OFFLINE), "poll"]).exit_code == 0
    assert env_db.exists()
    assert (
        runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(flag_db), "poll"]).exit_code == 0
    )
    assert flag_db.exists()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += _commands(command, prefix + name + " ")
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli), ids=lambda v: str(v))
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help and len(command.help.split()) > 4, name
    assert "Example" in command.help, f"`aggregator {name} --help` shows no example"


def test_help_is_fast_because_heavy_libraries_are_lazy() -> None:
    """`aggregator --help` loads click and what the commands are made of, nothing else: not
    the libraries of polling and clustering, nor YAML and the config (see
    benchmarks/cli_speed.py for the time this keeps)."""
    heavy = (
        "sklearn", "feedparser", "aiohttp", "numpy", "scipy", "jinja2", "yaml", "nh3",
        "sqlite_utils", "rich", "textual", "aggregator.config", "aggregator.models",
    )  # fmt: skip
    code = (
        "import sys; from cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {heavy!r} if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "Commands:" in result.stdout
    assert result.stderr.strip() == "[]"


def test_stories_is_fast_because_the_read_path_loads_nothing_heavy(offline_db: Path) -> None:
    """`stories` reads through sqlite3 alone: not sqlite-utils (and numpy), nor the libraries
    of polling and clustering (see benchmarks/stories_speed.py for the time this keeps)."""
    heavy = (
        "sklearn", "feedparser", "aiohttp", "numpy", "scipy", "jinja2", "nh3", "sqlite_utils",
        "rich", "textual", "aggregator.pipeline", "aggregator.fetch",
    )  # fmt: skip
    code = (
        "import sys; from cli import cli\n"
        f"try:\n    cli(['--config', {str(OFFLINE)!r}, '--db', {str(offline_db)!r}, 'stories'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        f"print([m for m in {heavy!r} if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "Castovia" in result.stdout or "articles" in result.stdout
    assert result.stderr.strip() == "[]"


@pytest.mark.parametrize(
    "launch",
    [
        ["-m", "aggregator"],
        [str(ROOT / "cli.py")],
        ["-c", "from aggregator.cli import main; main()"],
    ],
    ids=["python -m aggregator", "top-level cli.py", "the console script's main"],
)
def test_every_way_in_runs_the_same_command_under_its_name(launch: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *launch, "--config", str(OFFLINE), "stories", "--since", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Usage: aggregator stories [OPTIONS]"), result.stderr


def test_the_console_script_is_the_package_cli() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"aggregator": "aggregator.cli:main"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stories", "--since", "1000000d"], "more than a century"),
        (["stories", "--since", "24"], "with a unit"),
        (["stories", "--limit", "-1"], "--limit"),
        (["stories", "--min-size", "0"], "--min-size"),
        (["search", "   "], "at least one word"),
        (["articles", " "], "Error: search needs at least one word"),
        (["browse"], "browse needs a terminal"),  # CliRunner's streams are not terminals
    ],
)
def test_bad_options_exit_2_without_a_traceback(
    offline_db: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["--config", str(OFFLINE), "--db", str(offline_db), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_quiet_run_with_email_prints_only_the_digest(tmp_path: Path, runner: CliRunner) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: x.db\nfeeds:\n  - {EXAMPLES / 'feeds' / 'tech-quarter.xml'}\n"
        "email:\n  smtp_host: 127.0.0.1\n  from: me@example.org\n  to: [me@example.org]\n"
    )
    result = runner.invoke(cli, ["--config", str(config), "-q", "run"])
    assert result.exit_code == 0 and result.stderr == ""


def test_feeds_add_creates_the_config_it_is_given(tmp_path: Path, runner: CliRunner) -> None:
    path = tmp_path / "new.yaml"
    result = runner.invoke(
        cli, ["--config", str(path), "feeds", "add", "--no-check", "https://a.example/rss"]
    )
    assert result.exit_code == 0, result.output
    assert "https://a.example/rss" in path.read_text()


def test_a_malformed_feed_url_in_the_config_exits_2(tmp_path: Path, runner: CliRunner) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("feeds:\n  - 'http://[::1/feed'\n")
    result = runner.invoke(cli, ["--config", str(path), "poll"])
    assert result.exit_code == 2 and "not a valid URL" in result.stderr


def test_shell_completion_as_the_readme_sets_it_up(runner: CliRunner) -> None:
    script = runner.invoke(
        cli, [], prog_name="aggregator", env={"_AGGREGATOR_COMPLETE": "bash_source"}
    )
    assert script.exit_code == 0 and "_aggregator_completion" in script.stdout
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "_AGGREGATOR_COMPLETE=bash_source aggregator" in readme
    words = runner.invoke(
        cli,
        [],
        prog_name="aggregator",
        env={
            "_AGGREGATOR_COMPLETE": "bash_complete",
            "COMP_WORDS": "aggregator sto",
            "COMP_CWORD": "1",
        },
    )
    assert words.exit_code == 0
    assert set(words.stdout.split()) == {"plain,stories", "plain,story"}
