"""OPML subscription lists: reading and writing (pure), then `feeds import` and `feeds export`."""

from __future__ import annotations

import email.utils
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aggregator import feedlist
from aggregator.config import load_config
from aggregator.errors import AggregatorError, OpmlError
from aggregator.feedlist import add_feed_to_file, add_feeds_to_file
from aggregator.models import FeedConfig
from aggregator.opml import parse_opml, read_opml, render_opml
from cli import cli

from .conftest import FeedServer, shared_path

NOW = datetime(2026, 11, 24, 20, 39, tzinfo=UTC)


def opml(body: str, *, head: str = "<head><title>Mine</title></head>") -> bytes:
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f'{declaration}<opml version="2.0">{head}<body>{body}</body></opml>'.encode()


NESTED = opml(
    """
    <outline text="News">
      <outline text="World" title="World news">
        <outline type="rss" text="Text name" title="Title name" xmlUrl="https://a.example/rss"/>
        <outline type="rss" text="Only text" xmlUrl="https://b.example/atom"/>
      </outline>
      <outline type="rss" text="https://c.example/feed" xmlUrl="https://c.example/feed"/>
    </outline>
    <outline text="">
      <outline type="rss" text="Nameless folder" xmlUrl="https://d.example/rss"/>
    </outline>
    <outline type="rss" text="Top" xmlUrl="  https://e.example/rss  " category="tech,/sci/space"/>
    """
)


# --- reading ----------------------------------------------------------------------------------


def test_nested_folders_become_tags_and_title_comes_from_title_then_text() -> None:
    listing = read_opml(NESTED, "nested.opml")
    assert listing.title == "Mine" and listing.skipped == ()
    assert listing.feeds == (
        FeedConfig("https://a.example/rss", "Title name", ("News", "World")),
        FeedConfig("https://b.example/atom", "Only text", ("News", "World")),
        # a text that is just the URL names nothing: the feed's own title will do
        FeedConfig("https://c.example/feed", None, ("News",)),
        FeedConfig("https://d.example/rss", "Nameless folder", ()),
        # the category attribute: a tag, and each part of a /path
        FeedConfig("https://e.example/rss", "Top", ("tech", "sci", "space")),
    )
    assert parse_opml(NESTED, "nested.opml") == list(listing.feeds)


def test_a_url_listed_twice_is_kept_once_with_the_tags_of_both_places() -> None:
    data = opml(
        '<outline text="A"><outline text="One" xmlUrl="https://a.example/rss"/></outline>'
        '<outline text="B"><outline text="Two" xmlUrl="https://a.example/rss"/></outline>'
        '<outline text="Other" xmlUrl="https://b.example/rss"/>'
    )
    assert parse_opml(data, "dupes.opml") == [
        FeedConfig("https://a.example/rss", "One", ("A", "B")),
        FeedConfig("https://b.example/rss", "Other", ()),
    ]


def test_feeds_that_are_not_http_are_skipped_with_a_reason() -> None:
    data = opml(
        '<outline text="Ok" xmlUrl="HTTPS://ok.example/rss"/>'
        '<outline text="Local" xmlUrl="file:///etc/passwd"/>'
        '<outline text="Path" xmlUrl="/home/me/feed.xml"/>'
        '<outline text="Script" xmlUrl="javascript:alert(1)"/>'
        '<outline text="Ftp" xmlUrl="ftp://files.example/feed.xml"/>'
        '<outline text="Hostless" xmlUrl="http:///feed"/>'
        '<outline text="Bad" xmlUrl="http://[::1/feed"/>'
        '<outline text="Spaced" xmlUrl="https://a.example/my feed"/>'
        '<outline text="Again" xmlUrl="file:///etc/passwd"/>'
        '<outline text="Empty" xmlUrl=""/>'
    )
    listing = read_opml(data, "mixed.opml")
    assert [f.url for f in listing.feeds] == ["HTTPS://ok.example/rss"]
    reasons = {s.url: s.reason for s in listing.skipped}
    assert reasons == {
        "file:///etc/passwd": "not an http(s) URL",
        "/home/me/feed.xml": "not an http(s) URL",
        "javascript:alert(1)": "not an http(s) URL",
        "ftp://files.example/feed.xml": "not an http(s) URL",
        "http:///feed": "the URL names no host",
        "http://[::1/feed": "not a valid URL (Invalid IPv6 URL)",
        "https://a.example/my feed": "white space or control characters in the URL",
    }
    assert listing.skipped[0].title == "Local"


def test_opml_1_attribute_case_comments_and_a_doctype_are_read() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE opml>\n<!-- exported -->\n<opml version="1.0">'
        b"<head><title>Old</title></head><body><!-- a note -->"
        b'<outline TEXT="Shouty" XMLURL="https://a.example/rss"/></body></opml>'
    )
    assert parse_opml(data, "old.opml") == [FeedConfig("https://a.example/rss", "Shouty")]


def test_declared_encodings_are_honoured() -> None:
    latin = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><opml version="2.0"><body>'
        '<outline text="Caf\xe9" xmlUrl="https://a.example/rss"/></body></opml>'
    )
    assert parse_opml(latin.encode("latin-1"), "latin.opml")[0].title == "Café"
    utf16 = latin.replace("ISO-8859-1", "UTF-16").encode("utf-16")
    assert parse_opml(utf16, "utf16.opml")[0].title == "Café"


def test_control_characters_and_runs_of_white_space_leave_titles_and_tags() -> None:
    data = opml(
        '<outline text="Bad&#x9b;31m\tfolder">'
        '<outline text="  Red&#x9b;31m \n title " xmlUrl="https://a.example/rss"/></outline>'
    )
    assert parse_opml(data, "ctl.opml") == [
        FeedConfig("https://a.example/rss", "Red 31m title", ("Bad 31m folder",))
    ]


def test_folders_nested_deeper_than_the_stack_are_fine() -> None:
    depth = 5000
    data = opml(
        '<outline text="f">' * depth
        + '<outline xmlUrl="https://a.example/"/>'
        + "</outline>" * depth
    )
    [feed] = parse_opml(data, "deep.opml")
    assert feed.tags == ("f",)  # one folder name, however often it nests


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not well-formed XML (no element found"),
        (b"just some text", "not well-formed XML (syntax error"),
        (b'{"feeds": []}', "not well-formed XML"),
        (b"<html><body><p>Hello</p></body></html>", "its root element is <html>, not <opml>"),
        (b'<rss version="2.0"><channel/></rss>', "its root element is <rss>, not <opml>"),
        (b'<opml version="2.0"><head/></opml>', "an OPML document without a <body>"),
        (b'<opml><body><outline xmlUrl="https://a.example/?a=1&b=2"/></body></opml>', "line 1"),
    ],
)
def test_what_is_not_opml_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError) as caught:
        parse_opml(data, "list.opml")
    assert str(caught.value).startswith("list.opml: ")
    assert message in str(caught.value)
    assert isinstance(caught.value, AggregatorError) and caught.value.exit_code == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY a "lollollollollollollollollollol">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
  <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
  <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<opml version="2.0"><body><outline text="&i;" xmlUrl="https://a.example/rss"/></body></opml>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://a.example/rss"/></body></opml>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "external"])
def test_entity_declarations_are_refused_at_once(data: bytes) -> None:
    with pytest.raises(OpmlError, match="refused: the document declares XML entities"):
        parse_opml(data, "evil.opml")


def test_real_subscription_lists() -> None:
    with_titles = read_opml(shared_path("corpus", "real-feeds", "Subs.opml").read_bytes(), "Subs")
    assert with_titles.title == "Subs" and with_titles.skipped == ()
    assert len(with_titles.feeds) == 207
    assert with_titles.feeds[0] == FeedConfig(
        "http://daringfireball.net/feeds/main", "Daring Fireball", ()
    )
    tags = {tag for feed in with_titles.feeds for tag in feed.tags}
    assert tags == {"Weblogs", "Programming", "Macintosh", "Writers"}
    assert all(feed.title for feed in with_titles.feeds)
    # The same list written by another program, with `text` only: the same feeds.
    text_only = shared_path("corpus", "real-feeds", "SubsNoTitleAttributes.opml").read_bytes()
    assert read_opml(text_only, "SubsNoTitleAttributes").feeds == with_titles.feeds


# --- writing ----------------------------------------------------------------------------------

FEEDS = [
    FeedConfig("https://a.example/rss", "Alpha & <Omega>", ("world", "europe")),
    FeedConfig("https://b.example/atom?x=1&y=2", None, ("world",)),
    FeedConfig("https://c.example/feed", 'Quote "me"', ()),
    FeedConfig("https://d.example/rss", "Tech", ("tech", "a/b", "c,d")),
]


def test_render_writes_opml_2_with_a_head_and_folders_by_first_tag() -> None:
    document = render_opml(FEEDS, title="aggregator subscriptions", now=NOW)
    assert document.startswith('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">')
    root = ET.fromstring(document)  # our own output, so plain ElementTree is fine here
    assert root.findtext("head/title") == "aggregator subscriptions"
    created = root.findtext("head/dateCreated")
    assert created == "Tue, 24 Nov 2026 20:39:00 GMT"
    assert email.utils.parsedate_to_datetime(created) == NOW
    body = root.find("body")
    assert body is not None
    assert [(o.get("text"), o.get("xmlUrl")) for o in body] == [
        ("world", None),
        ('Quote "me"', "https://c.example/feed"),
        ("tech", None),
    ]
    world = body[0]
    assert [o.attrib for o in world] == [
        {
            "type": "rss",
            "text": "Alpha & <Omega>",
            "title": "Alpha & <Omega>",
            "xmlUrl": "https://a.example/rss",
            "category": "world,europe",
        },
        {
            "type": "rss",
            "text": "https://b.example/atom?x=1&y=2",
            "xmlUrl": "https://b.example/atom?x=1&y=2",
            "category": "world",
        },
    ]
    assert body[1].get("title") == 'Quote "me"' and body[1].get("category") is None
    assert body[2][0].get("category") == "tech"  # a tag with , or / would read back wrong


def test_export_then_import_gives_the_same_feeds() -> None:
    document = render_opml(FEEDS[:3], title="x", now=NOW).encode()
    assert parse_opml(document, "export.opml") == FEEDS[:3]


def test_render_leaves_out_what_xml_cannot_carry_and_writes_paths_as_file_urls() -> None:
    feeds = [FeedConfig("/srv/feeds/local.xml", "Bell\x07 and\x00 nul", ("t\x01ag",))]
    document = render_opml(feeds, title="t\x0b", now=NOW)
    outline = ET.fromstring(document).find("body/outline/outline")
    assert outline is not None
    assert outline.get("xmlUrl") == "file:///srv/feeds/local.xml"
    assert outline.get("title") == "Bell and nul" and outline.get("category") == "tag"


words = st.text(
    st.characters(codec="utf-8", exclude_categories=("C", "Z"), exclude_characters=",/"),
    min_size=1,
    max_size=12,
)
names = st.lists(words, min_size=1, max_size=3).map(" ".join)
feed_lists = st.lists(
    st.builds(
        FeedConfig,
        url=st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/?=&]{0,20}", fullmatch=True),
        title=st.none() | names,
        tags=st.lists(names, max_size=4, unique=True).map(tuple),
    ),
    max_size=8,
    unique_by=lambda feed: feed.url,
)


@given(feed_lists)
def test_any_feed_list_survives_export_and_import(feeds: list[FeedConfig]) -> None:
    document = render_opml(feeds, title="x", now=NOW).encode()
    imported = parse_opml(document, "export.opml")
    # Export groups feeds by their first tag, so compare without the order.
    assert sorted(imported, key=lambda f: f.url) == sorted(feeds, key=lambda f: f.url)


# --- the config file ----------------------------------------------------------------------------

CONFIG = """\
# my precious comment
database: agg.db  # beside me
feeds:
  # the one I always read
  - https://a.example/rss   # trailing note
polling:
  interval: 30m
"""


def test_add_feeds_to_file_appends_in_one_write_and_reports_what_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    writes: list[Path] = []
    real_write = feedlist._write
    monkeypatch.setattr(feedlist, "_write", lambda p, text: (writes.append(p), real_write(p, text)))
    new = [
        FeedConfig("https://b.example/rss", "B", ("x", "y")),
        FeedConfig("https://a.example/rss", "A again"),
        FeedConfig("https://c.example/rss"),
        FeedConfig("https://b.example/rss", "B twice"),
    ]
    added, present = add_feeds_to_file(path, new)
    assert [f.url for f in added] == ["https://b.example/rss", "https://c.example/rss"]
    assert [f.title for f in present] == ["A again", "B twice"]
    assert writes == [path]
    text = path.read_text()
    assert text.startswith(CONFIG.split("polling:")[0])  # every old line as it was
    assert text.endswith("polling:\n  interval: 30m\n")
    assert "  - url: https://b.example/rss\n    title: B\n    tags: [x, y]\n" in text
    assert [f.url for f in load_config(path).feeds] == [
        "https://a.example/rss",
        "https://b.example/rss",
        "https://c.example/rss",
    ]
    # Nothing new, or a dry run: the file is not written at all.
    assert add_feeds_to_file(path, new[:1]) == ([], new[:1])
    assert add_feeds_to_file(path, [FeedConfig("https://d.example/")], dry_run=True)[0]
    assert writes == [path] and "d.example" not in path.read_text()


@pytest.mark.parametrize(
    "text", ["feeds: [https://a.example/rss]\n", "database: x.db\n", "", "feeds:\n"]
)
def test_add_feeds_to_file_on_other_layouts(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    added, _ = add_feeds_to_file(
        path, [FeedConfig("https://b.example/rss", "B"), FeedConfig("https://c.example/rss")]
    )
    assert len(added) == 2
    urls = [f.url for f in load_config(path).feeds]
    assert urls[-2:] == ["https://b.example/rss", "https://c.example/rss"]


def test_add_feed_to_file_still_refuses_a_feed_that_is_there(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    with pytest.raises(AggregatorError, match="already in"):
        add_feed_to_file(path, FeedConfig("https://a.example/rss"))
    assert path.read_text() == CONFIG


# --- the command line ---------------------------------------------------------------------------

LIST = opml(
    '<outline text="World"><outline text="Alpha" xmlUrl="https://a.example/rss"/>'
    '<outline text="Beta" xmlUrl="https://b.example/rss"/></outline>'
    '<outline text="Gamma" xmlUrl="https://g.example/atom"/>'
    '<outline text="Local" xmlUrl="file:///etc/passwd"/>'
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_import_a_file_keeps_the_config_and_counts_what_was_there(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    source = tmp_path / "subs.opml"
    source.write_bytes(LIST)
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Imported 2 feeds (1 already present, 1 skipped) to {config}\n"
    assert result.stderr == "skipped file:///etc/passwd: not an http(s) URL\n"
    text = config.read_text()
    assert text.startswith(CONFIG.split("polling:")[0]) and "interval: 30m" in text
    feeds = load_config(config).feeds
    assert feeds[1:] == (
        FeedConfig("https://b.example/rss", "Beta", ("World",)),
        FeedConfig("https://g.example/atom", "Gamma", ()),
    )
    assert feeds[0] == FeedConfig("https://a.example/rss")  # already there: left as it was
    again = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)])
    assert again.stdout == f"Imported 0 feeds (3 already present, 1 skipped) to {config}\n"
    assert config.read_text() == text


def test_import_from_a_url_with_extra_tags(
    runner: CliRunner, config: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add("/subs.opml", body=LIST, headers={"Content-Type": "text/x-opml"})
    args = ["--config", str(config), "feeds", "import", url, "--tag", "imported", "--tag", "World"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Imported 2 feeds (1 already present, 1 skipped)" in result.stdout
    assert len(feed_server.hits("/subs.opml")) == 1  # the list only: no feed is fetched
    assert load_config(config).feeds[1:] == (
        FeedConfig("https://b.example/rss", "Beta", ("World", "imported")),
        FeedConfig("https://g.example/atom", "Gamma", ("imported", "World")),
    )


def test_import_dry_run_writes_nothing_and_shows_what_it_would_add(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    source = tmp_path / "subs.opml"
    source.write_bytes(LIST)
    before = config.read_bytes()
    result = runner.invoke(
        cli, ["--config", str(config), "feeds", "import", str(source), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "+ https://b.example/rss  Beta [World]\n"
        "+ https://g.example/atom  Gamma\n"
        f"Would import 2 feeds (1 already present, 1 skipped) to {config}\n"
    )
    assert config.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} == {"config.yaml", "subs.opml"}


def test_import_json(tmp_path: Path, runner: CliRunner, config: Path) -> None:
    source = tmp_path / "subs.opml"
    source.write_bytes(LIST)
    result = runner.invoke(
        cli, ["--config", str(config), "feeds", "import", str(source), "--json", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "config": str(config),
        "dry_run": True,
        "added": [
            {"url": "https://b.example/rss", "title": "Beta", "tags": ["World"]},
            {"url": "https://g.example/atom", "title": "Gamma", "tags": []},
        ],
        "already_present": [{"url": "https://a.example/rss", "title": "Alpha", "tags": ["World"]}],
        "skipped": [
            {"url": "file:///etc/passwd", "title": "Local", "reason": "not an http(s) URL"}
        ],
    }


def test_import_a_real_list_into_a_new_config(tmp_path: Path, runner: CliRunner) -> None:
    source = shared_path("corpus", "real-feeds", "Subs.opml")
    config = tmp_path / "new" / "config.yaml"
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "Imported 207 feeds (0 already present, 0 skipped)" in result.stdout
    feeds = load_config(config).feeds
    assert len(feeds) == 207 and feeds[0].title == "Daring Fireball"


def test_a_thousand_feeds_in_folders_import_in_one_go(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    folders = "".join(
        f'<outline text="Folder {j}">'
        + "".join(
            f'<outline type="rss" text="Feed {j}.{i}" xmlUrl="https://f{j}-{i}.example/rss"/>'
            for i in range(100)
        )
        + "</outline>"
        for j in range(10)
    )
    source = tmp_path / "big.opml"
    source.write_bytes(opml(folders))
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "Imported 1,000 feeds" in result.stdout
    feeds = load_config(config).feeds
    assert len(feeds) == 1001
    assert feeds[-1].url == "https://f9-99.example/rss" and feeds[-1].tags == ("Folder 9",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><body>Sign in</body></html>", "not an OPML subscription list"),
        (BILLION_LAUGHS, "refused"),
    ],
)
def test_import_of_what_is_not_opml_exits_1_with_a_message(
    tmp_path: Path, runner: CliRunner, config: Path, data: bytes, message: str
) -> None:
    source = tmp_path / "page.opml"
    source.write_bytes(data)
    result = runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {source}: ") and message in result.stderr
    assert "Traceback" not in result.output and config.read_text() == CONFIG


def test_import_of_a_missing_file_or_url_exits_1(
    tmp_path: Path, runner: CliRunner, config: Path, feed_server: FeedServer
) -> None:
    missing = runner.invoke(
        cli, ["--config", str(config), "feeds", "import", str(tmp_path / "nope.opml")]
    )
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    gone = runner.invoke(
        cli, ["--config", str(config), "feeds", "import", feed_server.url("/nope.opml")]
    )
    assert gone.exit_code == 1 and "HTTP 404" in gone.stderr


def test_export_parses_back_and_writes_a_file(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    source = tmp_path / "subs.opml"
    source.write_bytes(LIST)
    assert (
        runner.invoke(cli, ["--config", str(config), "feeds", "import", str(source)]).exit_code == 0
    )
    result = runner.invoke(cli, ["--config", str(config), "feeds", "export"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    exported = parse_opml(result.stdout.encode(), "stdout")
    assert sorted(exported, key=lambda f: f.url) == sorted(
        load_config(config).feeds, key=lambda f: f.url
    )
    out = tmp_path / "out.opml"
    written = runner.invoke(cli, ["--config", str(config), "feeds", "export", "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert written.stderr == f"Exported 3 feeds to {out}\n"
    assert parse_opml(out.read_bytes(), str(out)) == exported
    # and the export imports into a fresh config as the same feeds
    fresh = tmp_path / "fresh.yaml"
    imported = runner.invoke(cli, ["--config", str(fresh), "feeds", "import", str(out)])
    assert imported.exit_code == 0, imported.output
    assert set(load_config(fresh).feeds) == set(load_config(config).feeds)
