from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedupe import (
    CROWDED,
    IngestPlan,
    NearCandidate,
    StoredLink,
    headline_keys,
    headline_words,
    is_near_duplicate,
    plan_ingest,
    shared_links,
)
from aggregator.models import Article
from aggregator.normalize import content_hash

NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
FEED = "https://news.example/rss"
HOME = "https://news.example/"


def article(
    title: str,
    *,
    guid: str | None = None,
    link: str | None = None,
    summary: str = "",
    feed: str = FEED,
) -> Article:
    return Article(
        feed_url=feed,
        guid=guid,
        url=link,
        canonical_url=link,
        title=title,
        summary=summary,
        published=NOW,
        first_seen=NOW,
        content_hash=content_hash(title, summary),
    )


FEED_ID = 1  # the feed being ingested
OTHER_FEED_ID = 2


def plan(
    articles: list[Article],
    known_items: set[str] | None = None,
    known_links: dict[str, int] | None = None,
) -> IngestPlan:
    """Plan for feed FEED_ID, where ``known_links`` were stored from another feed."""
    links = {
        url: StoredLink(id_, OTHER_FEED_ID, None, "other")
        for url, id_ in (known_links or {}).items()
    }
    return plan_ingest(
        articles, feed_id=FEED_ID, known_items=known_items or set(), known_links=links
    )


def titles(articles: tuple[Article, ...]) -> list[str]:
    return [a.title for a in articles]


def test_everything_new_on_first_fetch() -> None:
    batch = [
        article("One", guid="g1", link="https://news.example/1"),
        article("Two", guid="g2", link="https://news.example/2"),
        article("Three", guid="g3", link="https://news.example/3"),
    ]
    result = plan(batch)
    assert titles(result.new) == ["One", "Two", "Three"]
    assert result.duplicates == ()
    assert result.seen == 0


def test_empty_fetch() -> None:
    assert plan([]) == IngestPlan(new=(), duplicates=(), seen=0)


def test_new_vs_seen_by_guid() -> None:
    batch = [
        article("Old", guid="g1", link="https://news.example/1"),
        article("New", guid="g2", link="https://news.example/2"),
    ]
    result = plan(batch, known_items={"guid:g1"})
    assert titles(result.new) == ["New"]
    assert result.seen == 1


def test_guid_wins_over_link() -> None:
    """A known link under a new guid is a new item of this feed; a known guid under a new link is
    not."""
    batch = [
        article("Edited link", guid="g1", link="https://news.example/moved"),
        article("Reused link", guid="g9", link="https://news.example/1"),
    ]
    result = plan(batch, known_items={"guid:g1", "link:https://news.example/1"})
    assert titles(result.new) == ["Reused link"]
    assert result.seen == 1


def test_no_guid_falls_back_to_link() -> None:
    batch = [
        article("Old", link="https://news.example/1"),
        article("New", link="https://news.example/2"),
    ]
    result = plan(batch, known_items={"link:https://news.example/1"})
    assert titles(result.new) == ["New"]
    assert result.seen == 1


def test_no_guid_edited_title_same_link_is_seen() -> None:
    batch = [article("Old title, now edited", link="https://news.example/1")]
    result = plan(batch, known_items={"link:https://news.example/1"})
    assert result.new == ()
    assert result.seen == 1


def test_no_guid_no_link_falls_back_to_content_hash() -> None:
    old = article("Market closes higher", summary="Stocks rose.")
    new = article("Market closes lower", summary="Stocks fell.")
    result = plan(
        [old, new], known_items={f"hash:{content_hash('Market closes higher', 'Stocks rose.')}"}
    )
    assert titles(result.new) == ["Market closes lower"]
    assert result.seen == 1


def test_content_hash_match_ignores_case() -> None:
    known = {f"hash:{content_hash('market closes higher', 'stocks rose.')}"}
    result = plan([article("Market Closes Higher", summary="Stocks rose.")], known_items=known)
    assert result.new == ()


def test_duplicate_guid_inside_one_fetch_kept_once() -> None:
    batch = [
        article("First copy", guid="g1", link="https://news.example/1"),
        article("Second copy", guid="g1", link="https://news.example/1"),
        article("Third copy", guid="g1", link="https://news.example/1-updated"),
    ]
    result = plan(batch)
    assert titles(result.new) == ["First copy"]
    assert result.duplicates == ()


def test_duplicate_hash_inside_one_fetch_kept_once() -> None:
    batch = [article("Same words", summary="x"), article("SAME WORDS", summary="X")]
    assert len(plan(batch).new) == 1


def test_distinct_guids_and_links_are_all_new() -> None:
    batch = [
        article("Story", guid="g1", link="https://news.example/story"),
        article("Other", guid="g2", link="https://news.example/other"),
    ]
    result = plan(batch)
    assert len(result.new) == 2


def test_same_canonical_url_stored_from_another_feed_is_a_duplicate() -> None:
    batch = [
        article("Ours", guid="g1", link="https://wire.example/story"),
        article("Only ours", guid="g2", link="https://news.example/2"),
    ]
    result = plan(batch, known_links={"https://wire.example/story": 42})
    assert titles(result.new) == ["Only ours"]
    assert len(result.duplicates) == 1
    copy, stored_id = result.duplicates[0]
    assert copy.title == "Ours"
    assert stored_id == 42
    assert result.seen == 0


def test_duplicate_already_recorded_for_this_feed_is_seen_not_duplicate_again() -> None:
    batch = [article("Ours", guid="g1", link="https://wire.example/story")]
    result = plan(batch, known_items={"guid:g1"}, known_links={"https://wire.example/story": 42})
    assert result.duplicates == ()
    assert result.new == ()
    assert result.seen == 1


def test_article_without_link_is_never_a_cross_feed_duplicate() -> None:
    batch = [article("No link", guid="g1")]
    result = plan(batch, known_links={"": 1})
    assert titles(result.new) == ["No link"]


def test_shared_link_on_every_item_is_not_an_identity() -> None:
    """Feeds that point every item at their home page must not collapse into one item."""
    batch = [
        article("Monday notes", guid="g1", link=HOME),
        article("Tuesday notes", guid="g2", link=HOME),
        article("Wednesday notes", guid="g3", link=HOME),
    ]
    assert shared_links(batch) == {HOME}
    result = plan(batch)
    assert titles(result.new) == ["Monday notes", "Tuesday notes", "Wednesday notes"]
    assert result.seen == 0


def test_shared_link_is_not_a_cross_feed_duplicate_either() -> None:
    batch = [
        article("Monday notes", guid="g1", link=HOME),
        article("Tuesday notes", guid="g2", link=HOME),
    ]
    result = plan(batch, known_links={HOME: 7})
    assert result.duplicates == ()
    assert len(result.new) == 2


def test_shared_link_without_guids_falls_back_to_hash() -> None:
    batch = [
        article("Monday notes", link=HOME),
        article("Tuesday notes", link=HOME),
    ]
    result = plan(batch)
    assert titles(result.new) == ["Monday notes", "Tuesday notes"]
    assert all(a.item_key.startswith("hash:") for a in result.new)
    seen_again = plan(batch, known_items={a.item_key for a in result.new})
    assert seen_again.new == ()
    assert seen_again.seen == 2


def test_shared_link_keeps_url_for_display() -> None:
    batch = [article("A", guid="g1", link=HOME), article("B", guid="g2", link=HOME)]
    result = plan(batch)
    assert [a.url for a in result.new] == [HOME, HOME]


def test_shared_links() -> None:
    batch = [
        article("A", guid="g1", link=HOME),
        article("B", guid="g2", link=HOME),
        article("C", guid="g3", link="https://news.example/c"),
        article("C again", guid="g3", link="https://news.example/c"),
        article("D", link="https://news.example/d"),
    ]
    assert shared_links(batch) == {HOME}
    assert shared_links([]) == set()


def test_second_fetch_of_same_items_is_all_seen() -> None:
    batch = [
        article("One", guid="g1", link="https://news.example/1"),
        article("Two", link="https://news.example/2"),
        article("Three", summary="no guid, no link"),
    ]
    first = plan(batch)
    assert len(first.new) == 3
    second = plan(batch, known_items={a.item_key for a in first.new})
    assert second.new == ()
    assert second.seen == 3


def test_plan_does_not_change_its_inputs() -> None:
    batch = [article("A", guid="g1", link=HOME), article("B", guid="g2", link=HOME)]
    known_items: set[str] = set()
    known_links = {"https://x.example/": StoredLink(1, OTHER_FEED_ID, None, "h")}
    plan_ingest(batch, feed_id=FEED_ID, known_items=known_items, known_links=known_links)
    assert [a.canonical_url for a in batch] == [HOME, HOME]
    assert known_items == set()
    assert known_links == {"https://x.example/": StoredLink(1, OTHER_FEED_ID, None, "h")}


def test_a_link_this_feed_gave_another_item_before_is_not_an_identity() -> None:
    """A feed that points each day's item at its home page: the new item is new, not a copy."""
    today = article("Tuesday's note", guid="day2", link=HOME)
    stored = {HOME: StoredLink(7, FEED_ID, "day1", content_hash("Monday's note", ""))}
    result = plan_ingest([today], feed_id=FEED_ID, known_items=set(), known_links=stored)
    assert titles(result.new) == ["Tuesday's note"] and result.duplicates == ()
    assert result.new[0].canonical_url is None and result.new[0].url == HOME


def test_the_same_text_under_a_new_guid_is_the_same_item() -> None:
    """Guid churn: a feed that regenerates guids does not make its items new."""
    again = article("Monday's note", guid="regenerated", link=HOME)
    stored = {HOME: StoredLink(7, FEED_ID, "day1", again.content_hash)}
    result = plan_ingest([again], feed_id=FEED_ID, known_items=set(), known_links=stored)
    assert result.new == () and [i for _, i in result.duplicates] == [7]


def test_the_same_link_from_another_feed_is_a_copy() -> None:
    copy = article("Wire story", guid="other-guid", link=HOME)
    stored = {HOME: StoredLink(7, OTHER_FEED_ID, "day1", "x")}
    result = plan_ingest([copy], feed_id=FEED_ID, known_items=set(), known_links=stored)
    assert result.new == () and [(a.title, i) for a, i in result.duplicates] == [("Wire story", 7)]


# --- near-duplicates: the same article republished under another URL ---------------------------

ORIGINAL = "Putin and Erdogan agree on new steps for Idlib ceasefire"


def candidate(
    title: str,
    *,
    article_id: int = 7,
    feed_id: int = OTHER_FEED_ID,
    summary: str = "",
    hours: float = 0,
) -> NearCandidate:
    return NearCandidate(article_id, feed_id, title, summary, NOW - timedelta(hours=hours))


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("UPDATE 1-Putin and Erdogan agree", ("putin", "and", "erdogan", "agree")),
        ("UPDATE 2 - EXCLUSIVE: Putin and Erdogan agree", ("putin", "and", "erdogan", "agree")),
        ("BREAKING: Putin and Erdogan agree - Reuters", ("putin", "and", "erdogan", "agree")),
        ("Putin and Erdogan agree | The Daily Courier", ("putin", "and", "erdogan", "agree")),
        ("Putin and Erdogan agree \u2014 AP", ("putin", "and", "erdogan", "agree")),
        # not a slug without its separator, not an outlet's name when it is a long clause
        ("Update on Idlib talks", ("update", "on", "idlib", "talks")),
        (
            "Talks end - and both sides now say the ceasefire will hold",
            (
                "talks",
                "end",
                "and",
                "both",
                "sides",
                "now",
                "say",
                "the",
                "ceasefire",
                "will",
                "hold",
            ),
        ),
    ],
)
def test_headline_words_drop_wire_slugs_and_outlet_names(
    title: str, words: tuple[str, ...]
) -> None:
    assert headline_words(title) == words


LEDE = (
    "Russia and Turkey agreed a demilitarised zone around the province, "
    "officials said on Monday after talks in Sochi."
)


@pytest.mark.parametrize(
    ("copy", "lede", "same"),
    [
        ("UPDATE 1-Putin and Erdogan agree on new steps for Idlib ceasefire - Reuters", "", True),
        ("PUTIN AND ERDOGAN AGREE ON NEW STEPS FOR IDLIB CEASEFIRE", "", True),
        # a word dropped, added, dropped at the end: the same lede makes it a copy...
        ("Putin, Erdogan agree on new steps for Idlib ceasefire", LEDE, True),
        ("Putin and Erdogan agree on new steps for the Idlib ceasefire", LEDE, True),
        ("Putin and Erdogan agree on new steps for Idlib", LEDE, True),
        # ...the headline alone does not: it could be another outlet's own
        ("Putin, Erdogan agree on new steps for Idlib ceasefire", "", False),
        (
            "Putin, Erdogan agree on new steps for Idlib ceasefire",
            "Turkish banks rose. " * 4,
            False,
        ),
        # another outlet's own headline on the same event: a word changed, or the order
        ("Putin and Erdogan agreed on new steps for Idlib ceasefire", LEDE, False),
        ("Idlib ceasefire: Putin and Erdogan agree on new steps", LEDE, False),
        ("Erdogan meets Putin in Sochi as Idlib ceasefire talks open", LEDE, False),
    ],
)
def test_a_copy_keeps_the_words_in_order_give_or_take_one_with_the_same_lede(
    copy: str, lede: str, same: bool
) -> None:
    mine = article(copy, summary=lede)
    theirs = candidate(ORIGINAL, summary=LEDE if lede else "")
    assert is_near_duplicate(mine, theirs, timedelta(days=3)) is same
    if same:  # the index finds it
        assert set(headline_keys(ORIGINAL, theirs.summary)) & set(headline_keys(copy, lede))


def test_short_headlines_are_matched_only_whole_and_very_short_ones_never() -> None:
    window = timedelta(days=3)
    # four words can be a show's name or a column's: two such headlines are not one article
    assert headline_keys("Cosmos: A Spacetime Odyssey") == ()
    assert not is_near_duplicate(
        article("Cosmos: A Spacetime Odyssey"), candidate("'COSMOS: A Spacetime Odyssey'"), window
    )
    assert len(headline_keys("Markets close higher on Friday", LEDE)) == 1  # whole only
    assert not is_near_duplicate(
        article("Markets close higher on Friday", summary=LEDE),
        candidate("Markets close on Friday", summary=LEDE),
        window,
    )
    assert is_near_duplicate(
        article("Markets close higher on Friday"),
        candidate("Markets close higher on Friday"),
        window,
    )


def test_an_outlet_name_after_one_already_there_comes_off_too() -> None:
    assert headline_words(
        "Galavis offends Clare Crawley \u2014 Bachelor Nation Reacts \u2014 AP"
    ) == (
        "galavis",
        "offends",
        "clare",
        "crawley",
    )
    assert headline_words("Recall of a list | just-food.com (subscription)") == (
        "recall",
        "of",
        "a",
        "list",
    )


def test_copies_far_apart_in_time_or_with_different_texts_are_not_folded() -> None:
    window = timedelta(days=3)
    assert not is_near_duplicate(article(ORIGINAL), candidate(ORIGINAL, hours=80), window)
    body = (
        "Russia and Turkey agreed a demilitarised zone around the province, "
        "officials said on Monday after talks."
    )
    other = (
        "Shares in Turkish banks rose sharply as investors welcomed the deal "
        "reached by the two leaders in Sochi."
    )
    assert not is_near_duplicate(
        article(ORIGINAL, summary=body), candidate(ORIGINAL, summary=other), window
    )
    assert is_near_duplicate(
        article(ORIGINAL, summary=body), candidate(ORIGINAL, summary=body + " More."), window
    )
    assert is_near_duplicate(
        article(ORIGINAL, summary=body), candidate(ORIGINAL, summary="Short."), window
    )


def near_plan(
    batch: list[Article], stored: list[NearCandidate], feed_id: int = FEED_ID
) -> IngestPlan:
    headline = {a.content_hash: headline_keys(a.title, a.summary) for a in batch}
    near: dict[int, list[NearCandidate]] = {}
    for c in stored:
        for key in headline_keys(c.title, c.summary):
            near.setdefault(key, []).append(c)
    return plan_ingest(
        batch, feed_id=feed_id, known_items=set(), known_links={}, headline=headline, near=near
    )


def test_a_copy_from_another_feed_folds_into_the_earliest_original() -> None:
    copy = article(
        "UPDATE 1-" + ORIGINAL + " - Reuters", guid="c1", link="https://other.example/wire/1"
    )
    event = article(
        "Erdogan meets Putin in Sochi as Idlib ceasefire talks open",
        guid="c2",
        link="https://other.example/2",
    )
    result = near_plan(
        [copy, event],
        [
            candidate(ORIGINAL, article_id=9, hours=1),
            candidate(ORIGINAL + " - AP", article_id=4, hours=2),
        ],
    )
    assert result.duplicates == ((copy, 4),)
    assert titles(result.new) == [event.title]  # the same event in other words stays an article
    assert result.new_keys == (headline_keys(event.title, event.summary),)


def test_near_duplicates_within_one_feed_are_its_own_business() -> None:
    copy = article("UPDATE 2-" + ORIGINAL, guid="u2")
    result = near_plan([copy], [candidate(ORIGINAL, feed_id=FEED_ID)])
    assert titles(result.new) == [copy.title] and result.duplicates == ()


def test_a_fingerprint_that_a_crowd_shares_is_passed_over() -> None:
    """A template's fixed words ("... of the day's live results") file every headline of a
    series under one fingerprint. Past CROWDED articles it says nothing about a copy, and
    checking each against each would take quadratic time; the whole headline still matches."""
    body = (
        "Council members debated the harbour budget for hours before a narrow vote that "
        "left the opposition furious and the mayor relieved."
    )
    edited = article("Tense harbour budget vote of the day live results", summary=body)
    crowd = [
        candidate(f"Item {n} budget vote of the day live results", article_id=100 + n, summary=body)
        for n in range(CROWDED)
    ]
    shown = candidate(
        "Harbour budget vote of the day live results", article_id=7, summary=body + " More."
    )
    assert near_plan([edited], [shown]).duplicates == ((edited, 7),)  # one word more: a copy
    assert near_plan([edited], [shown, *crowd]).duplicates == ()  # the suffix is boilerplate now
    same = article("Harbour budget vote of the day live results", summary=body)
    assert near_plan([same], [shown, *crowd]).duplicates == ((same, 7),)  # whole: still found
