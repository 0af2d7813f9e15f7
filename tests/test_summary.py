"""A story's summary (aggregator.summary): cleaned of feed boilerplate, chosen by centrality,
never invented. Then as stored, and as `story --json` shows it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.listing import get_story
from aggregator.models import SummarySource
from aggregator.normalize import normalize_entry
from aggregator.parse import parse_feed
from aggregator.store import open_store
from aggregator.summary import MAX_CHARS, choose_summary, sentences
from cli import cli

from .conftest import EXAMPLES, shared_path

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def source(
    summary: str, *, title: str = "A headline", feed: str = "Feed", n: int = 1
) -> SummarySource:
    return SummarySource(n, feed, title, summary, NOW + timedelta(minutes=n))


def flat(text: str) -> str:
    return " ".join(text.split())


# --- cleaning: each pattern, in our own words ---------------------------------------------------

LEDE = "The harbour authority reopened the northern channel to cargo ships on Tuesday."
SECOND = "Dredging had closed it for eleven weeks, longer than planned."


@pytest.mark.parametrize(
    ("summary", "kept"),
    [
        # "The post … appeared first on …", and what follows it
        (f"{LEDE} The post Channel reopens appeared first on Harbour Daily.", [LEDE]),
        (
            f"{LEDE} {SECOND} The post Channel reopens appeared first on Harbour Daily. More",
            [LEDE, SECOND],
        ),
        # "Continue reading…", "Read more", "[…]"
        (f"{LEDE} Continue reading…", [LEDE]),
        (f"{LEDE} Continue reading on Medium »", [LEDE]),
        (f"{LEDE} {SECOND} Read more", [LEDE, SECOND]),
        (f"{LEDE} Read the full story at Harbour Daily.", [LEDE]),
        (f"{LEDE} […] {SECOND}", [LEDE, SECOND]),
        (f"{LEDE} [...]", [LEDE]),
        # bylines and datelines
        (f"By Jane Doe, Harbour Daily | {LEDE}", [LEDE]),
        (f"By JANE DOE and JOHN ROE - {LEDE}", [LEDE]),
        (f"ROTTERDAM (Reuters) - {LEDE}", [LEDE]),
        (f"NEW YORK, March 3 (AP) — {LEDE}", [LEDE]),
        (f"LONDON — {LEDE} {SECOND}", [LEDE, SECOND]),
        # a sentence cut off mid-word, or clipped with an ellipsis
        (f"{LEDE} Dredging had closed it for elev", [LEDE]),
        (f"{LEDE} Dredging had closed it for eleven weeks, longer…", [LEDE]),
        # image credits
        (f"{LEDE} [Photo courtesy of the harbour authority] {SECOND}", [LEDE, SECOND]),
        (f"{LEDE} (Image: Harbour Daily/Jane Doe) {SECOND}", [LEDE, SECOND]),
        (f"Photograph: Jane Doe/Harbour Daily. {LEDE}", [LEDE]),
        (f"Image credit: Harbour authority archive photos. {LEDE}", [LEDE]),
        # promotions
        (f"{LEDE} Sponsored by Acme: use promo code HARBOUR for 10% off.", [LEDE]),
        # not a sentence break: "Mr.", "U.S.", an initial
        (
            "Mr. Vos told the U.S. delegation that J. Smit would lead the new port authority.",
            ["Mr. Vos told the U.S. delegation that J. Smit would lead the new port authority."],
        ),
    ],
)
def test_boilerplate_is_left_out_and_the_news_kept_as_written(
    summary: str, kept: list[str]
) -> None:
    assert sentences(summary, "Northern channel reopens") == kept


def test_a_sentence_that_only_repeats_the_headline_is_left_out() -> None:
    title = "Harbour authority reopens the northern channel to cargo ships"
    assert sentences(
        f"The harbour authority reopens the northern channel to cargo ships. {SECOND}", title
    ) == [SECOND]
    assert sentences(f"{title}.", title) == []


def test_fragments_and_run_on_lists_are_left_out() -> None:
    assert sentences("Channel open.", "x") == []  # too short to say anything
    links = " ".join(f"link{i}" for i in range(80)) + "."
    assert sentences(links, "x") == []


# --- cleaning: real feeds -----------------------------------------------------------------------


def real_items() -> list[tuple[str, str, str]]:
    """(feed file, title, summary) of every item of the real-feeds corpus, as a poll stores it."""
    folder = shared_path("corpus", "real-feeds")
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in {".rss", ".atom", ".json", ".xml", ".rdf"}:
            continue
        try:
            parsed = parse_feed(path.as_uri(), path.read_bytes())
        except Exception:  # two files of the corpus are not feeds; parsing is tested elsewhere
            continue
        for entry in parsed.entries:
            article = normalize_entry(entry, feed_url=path.as_uri(), feed_link=parsed.link, now=NOW)
            if article is not None:
                found.append((path.name, article.title, article.summary))
    return found


def test_real_feeds_lose_their_boilerplate_and_keep_only_their_own_words() -> None:
    items = real_items()
    assert len(items) > 500
    kept = 0
    for name, title, summary in items:
        for sentence in sentences(summary, title):
            kept += 1
            assert sentence in flat(summary), (name, sentence)
            for junk in (
                "Continue reading",
                "appeared first on",
                "[…]",
                "Read more",
                "Sponsored by",
            ):
                assert junk not in sentence, (name, sentence)
            assert sentence.rstrip('"”’)]').endswith((".", "!", "?")), (name, sentence)
            assert not sentence.startswith(("Image by", "Photo by")), (name, sentence)
            assert not re.match(r"By( [A-Z][\w.]*){1,3} *[,|–—-]", sentence), (name, sentence)
    assert kept > 500  # most real items still have something to say


def test_known_real_boilerplate() -> None:
    by_feed: dict[str, list[tuple[str, str]]] = {}
    for name, title, summary in real_items():
        by_feed.setdefault(name, []).append((title, summary))
    # Medium's "Continue reading on »" tail
    marley = [s for t, s in by_feed["EMarley.rss"] if "Continue reading on" in s]
    assert marley and all(
        "Continue" not in x for t, s in by_feed["EMarley.rss"] for x in sentences(s, t)
    )
    # Daring Fireball's quoted excerpts with "[…]" between them: never glued into one sentence
    fireball = [(t, s) for t, s in by_feed["DaringFireball.atom"] if "[…]" in s]
    assert fireball
    for title, summary in fireball:
        for sentence in sentences(summary, title):
            assert "[…]" not in sentence
    # a photo credit in brackets
    tsunami = [(t, s) for t, s in by_feed["OneFootTsunami.atom"] if "[Photo courtesy" in s]
    assert tsunami
    assert all("Photo courtesy" not in x for t, s in tsunami for x in sentences(s, t))
    # Macworld's "Image by …/IDG" credit before the text
    macworld = [(t, s) for t, s in by_feed["macworld.rss"] if "Image by" in s]
    assert macworld
    assert all("Image by" not in x for t, s in macworld for x in sentences(s, t))


# --- choosing ----------------------------------------------------------------------------------


def test_the_most_central_sentence_leads_attributed_to_its_outlet() -> None:
    story = [
        source(
            "The central bank raised its interest rate by a quarter point to 4.75 percent. "
            "The bank's new headquarters opened downtown last spring with a rooftop garden.",
            title="Central bank raises interest rate",
            feed="Northgate Herald",
            n=1,
        ),
        source(
            "Policymakers lifted the interest rate a quarter point, the central bank said. "
            "Traders had expected the move after inflation stayed high.",
            title="Rates up a quarter point",
            feed="Meridian Wire",
            n=2,
        ),
        source(
            "The central bank raised the interest rate for the third time this year. "
            "A local bakery won a regional prize for its sourdough.",
            title="Third rate rise this year",
            feed="Pacific Ledger",
            n=3,
        ),
    ]
    summary = choose_summary(story)
    assert 1 <= len(summary) <= 2
    texts = [s.text for s in summary]
    assert "interest rate" in texts[0]
    assert not any("bakery" in t or "rooftop" in t for t in texts)
    for sentence in summary:
        article = next(a for a in story if a.article_id == sentence.article_id)
        assert sentence.feed == article.feed and sentence.text in article.summary
    assert sum(len(t) for t in texts) + len(texts) - 1 <= MAX_CHARS


def test_a_wire_copy_is_counted_once_and_credited_to_the_first_outlet() -> None:
    text = "The northern channel reopened to cargo ships on Tuesday after eleven weeks of dredging."
    story = [source(text, feed="Meridian Wire", n=1), source(text, feed="Northgate Herald", n=2)]
    [sentence] = choose_summary(story)
    assert sentence.feed == "Meridian Wire" and sentence.article_id == 1


def test_headline_only_stories_get_no_summary() -> None:
    assert choose_summary([]) == ()
    headline = "Northern channel reopens to cargo ships after dredging"
    story = [
        source("", title=headline, n=1),
        source(headline, title=headline, n=2),  # feeds that repeat the title as the summary
        source("Read more", title="Channel reopens", n=3),
    ]
    assert choose_summary(story) == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=60), st.text(max_size=400)), min_size=1, max_size=5))
def test_a_summary_is_always_text_of_an_article_of_the_story(
    articles: list[tuple[str, str]],
) -> None:
    story = [source(summary, title=title, n=i) for i, (title, summary) in enumerate(articles)]
    for sentence in choose_summary(story):
        article = next(a for a in story if a.article_id == sentence.article_id)
        assert sentence.text in flat(article.summary)
        assert sentence.feed == article.feed


_WORDS = st.sampled_from(
    [
        "the",
        "bank",
        "rate",
        "rose",
        "fell",
        "port",
        "ship",
        "channel",
        "quake",
        "coast",
        "alert",
        "vote",
        "party",
        "leader",
        "said",
        "on",
        "Tuesday",
        "after",
        "talks",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.lists(_WORDS, min_size=6, max_size=14), min_size=1, max_size=4),
        min_size=1,
        max_size=6,
    )
)
def test_sentences_made_of_words_give_a_summary_from_them(
    story_words: list[list[list[str]]],
) -> None:
    story = [
        source(" ".join(" ".join(words).capitalize() + "." for words in summary), n=i)
        for i, summary in enumerate(story_words)
    ]
    for sentence in choose_summary(story):
        assert sentence.text in next(
            a.summary for a in story if a.article_id == sentence.article_id
        )


# --- stored, and shown -------------------------------------------------------------------------


def test_a_polled_story_has_its_summary_stored_and_in_story_json(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(EXAMPLES / "offline.yaml"), "--db", str(tmp_path / "news.db")]
    assert runner.invoke(cli, [*base, "poll"], catch_exceptions=False).exit_code == 0
    listed = json.loads(runner.invoke(cli, [*base, "stories", "--json"]).stdout)
    assert all(story["summary"] for story in listed)
    for story in listed:
        shown = json.loads(runner.invoke(cli, [*base, "story", str(story["id"]), "--json"]).stdout)
        assert shown["summary"] == story["summary"]
        store = open_store(tmp_path / "news.db")
        articles = {a.id: a for a in get_story(store, story["id"]).articles}
        store.close()
        for sentence in shown["summary"]:
            assert set(sentence) == {"text", "feed", "article_id"}
            article = articles[sentence["article_id"]]
            assert sentence["text"] in flat(article.summary)
            assert sentence["feed"] == article.feed
        text = runner.invoke(cli, [*base, "story", str(story["id"])]).stdout
        for sentence in shown["summary"]:
            assert sentence["text"] in flat(text)


def test_a_summary_is_chosen_again_when_its_story_changes(tmp_path: Path) -> None:
    """Muting the outlet a summary quotes changes the story: its summary comes from the others."""
    runner = CliRunner()
    config = tmp_path / "config.yaml"
    text = (EXAMPLES / "offline.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("database: offline.db", f"database: {tmp_path / 'n.db'}"))
    (tmp_path / "feeds").symlink_to(EXAMPLES / "feeds")
    assert runner.invoke(cli, ["--config", str(config), "poll"]).exit_code == 0
    before = json.loads(runner.invoke(cli, ["--config", str(config), "stories", "--json"]).stdout)
    biggest = max(before, key=lambda s: s["sources"])
    quoted = biggest["summary"][0]["feed"]

    config.write_text(config.read_text(encoding="utf-8") + f"mute:\n  feeds: [{quoted}]\n")
    shown = runner.invoke(cli, ["--config", str(config), "story", str(biggest["id"]), "--json"])
    after = json.loads(shown.stdout)
    assert after["summary"] and quoted not in {s["feed"] for s in after["summary"]}
    assert {s["article_id"] for s in after["summary"]} <= {a["id"] for a in after["articles"]}
