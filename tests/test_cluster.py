"""The online clusterer with plain values: placement, coherence, decay, merging, ids."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.cluster import StoryClusterer, reach
from aggregator.config import ClusteringConfig
from aggregator.models import ClusterDoc

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CONFIG = ClusteringConfig()


def doc(key: int, title: str, minutes: float = 0, story: int | None = None) -> ClusterDoc:
    return ClusterDoc(key, title, "", f"outlet{key}", T0 + timedelta(minutes=minutes), story)


def test_reports_of_one_event_join_and_others_stay_apart() -> None:
    c = StoryClusterer(CONFIG)
    a = c.add(doc(1, "Varnek and Deslin agree Velmora ceasefire"))
    b = c.add(doc(2, "Velmora ceasefire agreed by Varnek, Deslin", 5))
    other = c.add(doc(3, "Recipe: slow roasted squash with sage", 6))
    assert a.new_story and a.similarity is None
    assert b.story == a.story and not b.new_story and b.similarity is not None
    assert other.new_story and other.story != a.story


def test_one_shared_common_word_never_joins() -> None:
    c = StoryClusterer(CONFIG)
    first = c.add(doc(1, "Cyber Monday deals draw record shoppers"))
    second = c.add(doc(2, "Monday television ratings slip", 1))
    assert second.story != first.story


def test_a_quiet_story_stops_attracting_loose_matches() -> None:
    early = StoryClusterer(CONFIG)
    early.add(doc(1, "Norvania central bank raises interest rates"))
    soon = early.add(doc(2, "Interest rates: Norvania bank decision", 30))
    late = StoryClusterer(CONFIG)
    late.add(doc(1, "Norvania central bank raises interest rates"))
    much_later = late.add(doc(2, "Interest rates: Norvania bank decision", 30 * 60))
    assert soon.story == -1 and not soon.new_story
    assert much_later.new_story  # 30 h of silence damps the similarity below the threshold
    assert much_later.similarity is None


def test_nothing_joins_a_story_past_the_window() -> None:
    config = replace(CONFIG, window=timedelta(hours=1), half_life=timedelta(days=30))
    c = StoryClusterer(config)
    c.add(doc(1, "Quillon launches Aero 7 phone"))
    assert c.add(doc(2, "Quillon launches Aero 7 phone", 120)).new_story


def test_a_story_takes_nothing_once_max_span_after_its_first_article() -> None:
    """Coverage that goes on for longer than max_span begins a new story, however close and
    however steady: a story is an event, not a topic that runs for months."""
    config = replace(CONFIG, max_span=timedelta(days=1))
    c = StoryClusterer(config)
    title = "Quillon launches Aero 7 phone"
    first = c.add(doc(1, title))
    placed = [c.add(doc(n, title, n * 120)) for n in range(2, 14)]  # every two hours
    assert all(p.story == first.story for p in placed[:-1])  # up to 24 h after the first
    assert placed[-1].new_story  # 26 h after it

    # Loaded with only its latest articles, a story still counts from when it began.
    loaded = StoryClusterer(config)
    loaded.load([doc(20, title, 23 * 60, story=7)], began={7: T0})
    assert loaded.add(doc(21, title, 25 * 60)).new_story
    fresh = StoryClusterer(config)
    fresh.load([doc(20, title, 23 * 60, story=7)])
    assert fresh.add(doc(21, title, 25 * 60)).story == 7


def test_converging_stories_merge_into_the_older() -> None:
    c = StoryClusterer(CONFIG)
    truce = c.add(doc(1, "Varnek and Deslin agree ceasefire"))
    c.add(doc(2, "Varnek Deslin ceasefire deal signed", 10))
    corridor = c.add(doc(3, "Velmora aid corridor convoy opens", 20))
    c.add(doc(4, "Velmora corridor convoy aid arrives", 30))
    assert corridor.story != truce.story
    bridge = c.add(doc(5, "Varnek Deslin ceasefire opens Velmora aid corridor convoy", 40))
    assert c.merges == [(truce.story, corridor.story)]
    assert bridge.story == truce.story
    assert c.resolve(corridor.story) == truce.story
    assert c.touched == {truce.story}
    assert len(c.stories[truce.story].members) == 5


def test_loaded_stories_keep_their_ids_and_new_ones_get_negative_keys() -> None:
    c = StoryClusterer(CONFIG)
    c.load(
        [
            doc(10, "Quillon unveils Aero 7 phone with Q3 chip", 0, story=42),
            doc(11, "Quillon Aero 7: the Q3 chip inside", 5, story=42),
        ]
    )
    joined = c.add(doc(12, "Hands-on with the Quillon Aero 7 and its Q3 chip", 20))
    fresh = c.add(doc(13, "Brennholt Rovers win the Continental Cup final", 21))
    assert joined.story == 42
    assert fresh.story == -13 and fresh.new_story


def test_summary_picks_the_most_central_headline_and_top_terms() -> None:
    c = StoryClusterer(CONFIG)
    titles = [
        "Quillon unveils Aero 7 phone",
        "Quillon Aero 7 phone has Q3 chip",
        "Aero 7: Quillon phone on sale for $899",
    ]
    key = c.add(doc(1, titles[0])).story
    for i, title in enumerate(titles[1:], start=2):
        assert c.add(doc(i, title, i)).story == key
    summary = c.summary(key)
    assert summary.title in titles
    assert {"quillon", "aero", "phone"} <= set(summary.terms)
    assert len(summary.terms) <= CONFIG.terms


def test_a_story_is_out_of_reach_once_damping_alone_sinks_a_perfect_match() -> None:
    # half-life 2 h, threshold 0.12: 0.5 ** (t / 2 h) < 0.12 from t = 6.12 h
    assert reach(CONFIG) == timedelta(hours=2) * math.log2(1 / 0.12)
    assert reach(replace(CONFIG, window=timedelta(hours=1))) == timedelta(hours=1)
    title = "Quillon launches Aero 7 phone"
    for minutes, joins in ((6 * 60, True), (6 * 60 + 15, False)):
        c = StoryClusterer(CONFIG)
        c.add(doc(1, title))
        assert c.add(doc(2, title, minutes)).new_story is not joins


def test_expire_forgets_only_stories_that_ended_before() -> None:
    c = StoryClusterer(CONFIG)
    old = c.add(doc(1, "Brennholt Rovers win the Continental Cup final")).story
    new = c.add(doc(2, "Norvania central bank raises interest rates", 600)).story
    c.expire(T0 + timedelta(minutes=300))
    assert set(c.stories) == {new} and old not in c.stories


def test_document_frequencies_are_counted_for_the_store() -> None:
    c = StoryClusterer(CONFIG, document_frequencies={"quillon": 4}, documents=10)
    c.add(doc(1, "Quillon phone"))
    assert c.documents == 11
    assert c.df_increments == {"quillon": 1, "phone": 1}
    assert c.df["quillon"] == 5


def test_a_term_counts_once_per_story_however_many_articles_repeat_it() -> None:
    c = StoryClusterer(CONFIG)
    for minute in range(5):
        c.add(doc(minute + 1, f"Titanfall review roundup part {minute + 1}", minute))
    c.add(doc(9, "Quillon phone review", 10))
    assert len(c.stories) == 2 and c.documents == 6
    # the story's own name once, however often its articles repeat it; "review" in two stories
    assert c.df_increments["titanfall"] == 1 and c.df_increments["review"] == 2


def test_the_word_a_story_is_about_is_not_enough_alone() -> None:
    c = StoryClusterer(CONFIG)
    for minute in range(4):
        c.add(doc(minute + 1, f"Apple iPhone launch event {minute}", minute))
    # "Apple" is the heaviest word of that story, and still not evidence on its own
    assert c.add(doc(9, "Apple crumble recipe", 5)).new_story


def test_vocabulary_then_frequencies_places_as_the_constructor_does() -> None:
    docs = [
        doc(1, "Quillon unveils Aero 7 phone"),
        doc(2, "Quillon Aero 7 phone has a Q3 chip", 5),
        doc(3, "Brennholt Rovers win the Continental Cup", 6),
    ]
    stored = {"quillon": 3, "phone": 40, "cup": 12}
    direct = StoryClusterer(CONFIG, document_frequencies=stored, documents=100)
    staged = StoryClusterer(CONFIG)
    assert staged.vocabulary(docs) >= {"quillon", "aero", "phone", "chip", "rovers", "cup"}
    staged.use_frequencies(stored, 100)
    assert [staged.add(d) for d in docs] == [direct.add(d) for d in docs]
    assert staged.df_increments == direct.df_increments and staged.documents == 103
