"""Mute rules: terms and feeds kept out of stories and digests, on the offline example's
database (a real SQLite file, through the real CLI), and taken back out when the rules go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.stories import mute_query, rules_key

from .conftest import OFFLINE, invoke


def muted_config(tmp_path: Path, mute: dict[str, Any] | None) -> Path:
    """A new config file: the offline example's, with its feeds by absolute path and these mute
    rules, and the database in tmp_path."""
    raw = yaml.safe_load(OFFLINE.read_text(encoding="utf-8"))
    for feed in raw["feeds"]:
        feed["url"] = str((OFFLINE.parent / feed["url"]).resolve())
    raw["database"] = str(tmp_path / "offline.db")
    if mute is not None:
        raw["mute"] = mute
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def cli_json(runner: CliRunner, config: Path, *args: str) -> Any:
    result = invoke(runner, "--config", str(config), *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def all_stories(runner: CliRunner, config: Path) -> dict[str, dict[str, Any]]:
    found = cli_json(runner, config, "stories", "--since", "all", "--limit", "0", "--min-size", "1")
    return {s["title"]: s for s in found}


PHONE = "Quillon unveils Aero 7 phone built around in-house Q3 chip"
VAULT = "Independent audit finds no critical flaws in popular password vault"
QUAKE = "Strong earthquake shakes Peñalta coast; magnitude 6.4"


@pytest.fixture
def ran(tmp_path: Path, runner: CliRunner) -> Path:
    """The offline example polled with no rules; returns its config."""
    config = muted_config(tmp_path, None)
    result = invoke(runner, "--config", str(config), "-q", "poll")
    assert result.exit_code == 0, result.output
    return config


def test_a_muted_term_takes_its_story_out_of_stories_and_digests_and_back(
    ran: Path, tmp_path: Path, runner: CliRunner
) -> None:
    before = all_stories(runner, ran)
    phone = before[PHONE]
    assert phone["size"] == 4

    muted = muted_config(tmp_path, {"terms": ["quillon"]})  # case does not matter
    after = all_stories(runner, muted)
    assert PHONE not in after and len(after) == len(before) - 1
    digest = invoke(
        runner, "--config", str(muted), "digest", "--print", "--dry-run", "--since", "all"
    )
    assert digest.exit_code == 0 and "Quillon" not in digest.stdout
    assert "Norvania" in digest.stdout  # the rest of the digest is still there
    articles = cli_json(runner, muted, "articles", "--since", "all", "--limit", "0")
    assert not any("Quillon" in a["title"] for a in articles)
    assert cli_json(runner, muted, "articles", "quillon", "--since", "all") == []
    # Search still finds it, and says it is muted.
    found = cli_json(runner, muted, "search", "Quillon")
    assert found and all(a["muted"] for a in found)

    again = all_stories(runner, ran)  # the rules are gone: the same story comes back whole
    assert again[PHONE]["id"] == phone["id"] and again[PHONE]["size"] == 4
    assert again[PHONE]["sources"] == phone["sources"]


def test_a_muted_feed_keeps_only_what_other_feeds_carry(
    ran: Path, tmp_path: Path, runner: CliRunner
) -> None:
    before = all_stories(runner, ran)
    muted = muted_config(tmp_path, {"feeds": ["tech quarter"]})  # a title, any case
    after = all_stories(runner, muted)
    assert VAULT not in after  # only Tech Quarter carried it
    phone = after[PHONE]
    assert phone["size"] == before[PHONE]["size"] - 1
    assert "Tech Quarter" not in phone["source_names"]
    assert all(a["feed"] != "Tech Quarter" for a in phone["articles"])
    assert phone["unread"] == phone["size"]


def test_muting_one_article_of_a_story_recounts_it_and_picks_another_headline(
    ran: Path, tmp_path: Path, runner: CliRunner
) -> None:
    quake = all_stories(runner, ran)[QUAKE]
    headline_article = next(a for a in quake["articles"] if a["title"] == QUAKE)
    muted = muted_config(tmp_path, {"terms": [f"{QUAKE}"]})
    after = {s["id"]: s for s in all_stories(runner, muted).values()}
    story = after[quake["id"]]
    assert story["size"] == quake["size"] - 1
    assert story["title"] != QUAKE
    assert story["title"] in [a["title"] for a in quake["articles"]]
    assert all(a["id"] != headline_article["id"] for a in story["articles"])
    shown = cli_json(runner, muted, "story", str(quake["id"]))
    assert shown["size"] == story["size"] and shown["title"] == story["title"]


def test_rules_in_place_before_the_poll_mute_what_it_brings(
    tmp_path: Path, runner: CliRunner
) -> None:
    config = muted_config(tmp_path, {"terms": ["Aero 7"]})
    assert invoke(runner, "--config", str(config), "-q", "run").exit_code == 0
    found = all_stories(runner, config)
    assert PHONE not in found and VAULT in found
    articles = cli_json(runner, config, "search", "Quillon")
    assert articles and all(a["muted"] for a in articles)


def test_a_copy_in_a_feed_not_muted_brings_the_article_back(
    tmp_path: Path, runner: CliRunner, feed_server: Any
) -> None:
    from .conftest import rss

    item = {"title": "Harbour crane collapses at dawn", "link": "https://wire.example/crane"}
    feed_server.add("/a.xml", body=rss("A", [item]))
    feed_server.add("/b.xml", body=rss("B", []))
    a, b = feed_server.url("/a.xml"), feed_server.url("/b.xml")
    path = tmp_path / "config.yaml"

    def write(items_b: list[dict[str, str]]) -> None:
        feed_server.add("/b.xml", body=rss("B", items_b))
        text = {
            "database": str(tmp_path / "db.sqlite"),
            "feeds": [{"url": a, "title": "A"}, {"url": b, "title": "B"}],
            "mute": {"feeds": [a]},
        }
        path.write_text(yaml.safe_dump(text), encoding="utf-8")

    write([])
    assert invoke(runner, "--config", str(path), "-q", "poll", "--all").exit_code == 0
    assert not cli_json(runner, path, "articles", "--since", "all")
    write([item])  # the same article, now also in B, which is not muted
    assert invoke(runner, "--config", str(path), "-q", "poll", "--all").exit_code == 0
    shown = cli_json(runner, path, "articles", "--since", "all")
    assert [x["title"] for x in shown] == [item["title"]]


def test_config_errors_name_the_rule(tmp_path: Path) -> None:
    config = muted_config(tmp_path, {"feeds": ["Nonesuch Gazette"]})
    with pytest.raises(ConfigError, match=r"mute\.feeds\[0\]: 'Nonesuch Gazette' is not"):
        load_config(config)
    config = muted_config(tmp_path, {"terms": ["ok", " -- "]})
    with pytest.raises(ConfigError, match=r"mute\.terms\[1\]: .* has no word"):
        load_config(config)
    for term, symbol in (("C++", "+"), ("AT&T", "&")):  # the index would drop the symbol
        config = muted_config(tmp_path, {"terms": [term]})
        with pytest.raises(ConfigError, match=rf"mute\.terms\[0\]: .* ignores '\{symbol}'"):
            load_config(config)
    load_config(muted_config(tmp_path, {"terms": ["magnitude 6.4", "O'Neil"]}))  # punctuation
    config = muted_config(tmp_path, {"words": ["x"]})
    with pytest.raises(ConfigError, match=r"mute\.words: unknown key"):
        load_config(config)


def test_muted_feeds_are_named_by_url_and_terms_come_from_the_environment(
    tmp_path: Path,
) -> None:
    config = muted_config(tmp_path, {"feeds": ["Meridian Wire"]})
    loaded = load_config(config, environ={"AGGREGATOR_MUTE_TERMS": "[cup, 'world cup']"})
    assert loaded.mute.terms == ("cup", "world cup")
    assert loaded.mute.feeds == (str((OFFLINE.parent / "feeds/meridian-wire.xml").resolve()),)


def test_the_rules_key_ignores_order_case_and_spacing_and_queries_are_phrases() -> None:
    from aggregator.config import MuteConfig

    assert rules_key(MuteConfig()) == ""
    one = rules_key(MuteConfig(terms=("World  Cup", "golf"), feeds=("b", "a")))
    assert one == rules_key(MuteConfig(terms=("golf", "world cup"), feeds=("a", "b")))
    assert one != rules_key(MuteConfig(terms=("golf",), feeds=("a", "b")))
    assert mute_query(["world  cup", 'say "x"']) == '"world cup" OR "say ""x"""'
    assert mute_query([]) is None


def test_muting_never_changes_where_later_articles_go(
    tmp_path: Path, runner: CliRunner, feed_server: Any
) -> None:
    """A story whose latest article is muted stays open to the next one, as if unmuted."""
    from datetime import UTC, datetime, timedelta

    from aggregator.pipeline import poll
    from aggregator.store import open_store

    from .conftest import rss

    start = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    waves = [
        (
            "Port Velm harbour crane collapse injures dock workers",
            "A harbour crane collapsed at Port Velm, injuring six dock workers.",
        ),
        (
            "Port Velm harbour crane collapse: horoscope for injured dock workers",
            "Six dock workers hurt when a harbour crane collapsed at Port Velm are in hospital.",
        ),
        (
            "Inquiry opens into Port Velm harbour crane collapse that injured dock workers",
            "An inquiry opened into the Port Velm harbour crane collapse that hurt six workers.",
        ),
    ]

    def placements(name: str, mute: dict[str, Any] | None) -> list[int | None]:
        folder = tmp_path / name
        folder.mkdir()
        urls = [feed_server.add(f"/{name}-{n}.xml", body=rss("Empty", [])) for n in range(3)]
        text: dict[str, Any] = {
            "database": str(folder / "db.sqlite"),
            "feeds": [{"url": u, "title": f"Outlet {n}"} for n, u in enumerate(urls)],
        }
        if mute:
            text["mute"] = mute
        (folder / "config.yaml").write_text(yaml.safe_dump(text), encoding="utf-8")
        config = load_config(folder / "config.yaml")
        store = open_store(config.database)
        for n, (title, summary) in enumerate(waves):
            when = start + timedelta(hours=4 * n)
            item = {
                "title": title,
                "link": f"https://outlet{n}.example/{name}/crane",
                "description": summary,
                "pubDate": when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            }
            feed_server.add(f"/{name}-{n}.xml", body=rss(f"Outlet {n}", [item]))
            poll(config, store, now=when, all_feeds=True)
        found = [a.story_id for a in sorted(store.search("crane", limit=0), key=lambda a: a.id)]
        store.close()
        return found

    plain = placements("plain", None)
    muted = placements("muted", {"terms": ["horoscope"]})
    assert len(plain) == 3 and len(set(plain)) == 1  # one story
    assert len(set(muted)) == 1, muted  # the same: the muted article kept the story open


def test_a_feed_title_two_feeds_share_must_be_given_as_a_url(tmp_path: Path) -> None:
    text = {
        "feeds": [
            {"url": "https://a.example/rss", "title": "Meridian Wire"},
            {"url": "https://b.example/rss", "title": "meridian wire"},
        ],
        "mute": {"feeds": ["Meridian Wire"]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(text), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mute\.feeds\[0\]: 'Meridian Wire' is the title of two"):
        load_config(path)
    text["mute"] = {"feeds": ["https://b.example/rss"]}
    path.write_text(yaml.safe_dump(text), encoding="utf-8")
    assert load_config(path).mute.feeds == ("https://b.example/rss",)
