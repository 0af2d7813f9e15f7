"""The online clusterer with plain values: placement, coherence, quiet cost, merging, ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.cluster import StoryClusterer, quiet_cost, reach
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


def test_one_shared_word_does_not_carry_a_loose_match() -> None:
    c = StoryClusterer(CONFIG)
    first = c.add(doc(1, "Cyber Monday deals draw record shoppers"))
    second = c.add(doc(2, "Monday television ratings slip", 1))
    assert second.story != first.story


def test_the_story_s_own_name_alone_joins_when_it_carries_the_similarity() -> None:
    """One shared word joins only with a strong similarity (clustering.one_word): the story's
    rare name in a short headline has it; the same name in a longer headline about something
    else does not, and a common word does not come near, however recent."""
    stream = {"first": 500, "hours": 300, "review": 300, "launch": 250, "new": 900, "game": 200}

    def place(title: str, config: ClusteringConfig = CONFIG) -> tuple[bool, float | None]:
        c = StoryClusterer(config, document_frequencies=stream, documents=10_000)
        c.add(doc(1, "Skyforge review roundup: critics praise the mech shooter"))
        c.add(doc(2, "Skyforge launch: servers strain on day one", 5))
        c.add(doc(3, "Skyforge servers back after launch strain", 10))
        placed = c.add(doc(4, title, 11))
        return placed.new_story, placed.similarity

    began, similarity = place("First hours with Skyforge")
    assert not began and similarity is not None and similarity >= CONFIG.one_word
    # Between threshold and one_word: what keeps it out is one_word.
    patch = "Skyforge patch notes and maintenance schedule"
    assert place(patch)[0]
    began, similarity = place(patch, replace(CONFIG, one_word=CONFIG.threshold))
    assert not began and similarity is not None
    assert CONFIG.threshold <= similarity < CONFIG.one_word
    assert place("Review: the first hours with a new game")[0]  # "review" is common
    assert place("Dragonmoor: the first hours")[0]  # shares nothing the story is about


def test_a_quiet_story_stops_attracting_loose_matches() -> None:
    def place(minutes: float) -> bool:
        c = StoryClusterer(CONFIG)
        c.add(doc(1, "Norvania central bank raises interest rates"))
        c.add(doc(2, "Norvania central bank lifts interest rates again", 5))
        title = "Norvania rates: what savers, borrowers and home buyers should do now"
        return c.add(doc(3, title, minutes)).new_story

    assert not place(30)  # a loose match (two shared words) joins while the story is busy
    assert place(10 * 60)  # and not once the story has been quiet for ten hours


def test_a_close_report_the_next_day_still_joins() -> None:
    """Time is evidence, not a wall: 20 h of quiet asks for more similarity, and a report that
    shares most of the story's words has it."""
    c = StoryClusterer(CONFIG)
    story = c.add(doc(1, "Varnek and Deslin agree Velmora ceasefire")).story
    c.add(doc(2, "Velmora ceasefire agreed by Varnek and Deslin", 10))
    later = c.add(doc(3, "Varnek, Deslin Velmora ceasefire holds overnight", 20 * 60 + 10))
    assert later.story == story and not later.new_story
    # it paid for the quiet: the same headline a minute after the story's latest scores higher
    again = c.add(doc(4, "Varnek, Deslin Velmora ceasefire holds overnight", 20 * 60 + 11))
    assert later.similarity is not None and again.similarity is not None
    assert later.similarity < again.similarity - 0.25


def test_the_quiet_cost_grows_with_each_doubling_of_quiet_hours() -> None:
    assert quiet_cost(CONFIG, timedelta(0)) == 0
    one = quiet_cost(CONFIG, timedelta(hours=1))
    assert one == CONFIG.quiet_cost
    assert quiet_cost(CONFIG, timedelta(hours=3)) == 2 * one
    assert quiet_cost(CONFIG, timedelta(hours=7)) == pytest.approx(3 * one)


def test_nothing_joins_a_story_past_the_window() -> None:
    config = replace(CONFIG, window=timedelta(hours=1), quiet_cost=0.0)
    c = StoryClusterer(config)
    c.add(doc(1, "Quillon launches Aero 7 phone"))
    assert not c.add(doc(2, "Quillon launches Aero 7 phone", 55)).new_story
    assert c.add(doc(3, "Quillon launches Aero 7 phone", 120)).new_story


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
    truce = c.add(doc(1, "Varnek and Deslin agree Velmora ceasefire"))
    c.add(doc(2, "Velmora: Varnek Deslin ceasefire deal signed", 10))
    corridor = c.add(doc(3, "Velmora aid corridor convoy opens", 20))
    c.add(doc(4, "Velmora corridor convoy aid arrives", 30))
    assert corridor.story != truce.story
    bridge = c.add(doc(5, "Varnek Deslin ceasefire opens Velmora aid corridor convoy", 40))
    assert c.merges == [(truce.story, corridor.story)]
    assert bridge.story == truce.story
    assert c.resolve(corridor.story) == truce.story
    assert c.touched == {truce.story}
    assert len(c.stories[truce.story].members) == 5


def test_one_headline_naming_two_stories_does_not_merge_them() -> None:
    """Two simultaneous stories with overlapping words stay apart, even when a round-up
    headline is close to both: the stories themselves do not agree."""

    def stories(config: ClusteringConfig) -> tuple[StoryClusterer, int, int]:
        c = StoryClusterer(config)
        game = [
            c.add(doc(1, "Skyforge launch: servers strain on Xbox One", 0)),
            c.add(doc(2, "Skyforge Xbox One launch review: Respawn delivers", 5)),
            c.add(doc(3, "Skyforge Xbox One servers back after launch strain", 10)),
        ]
        show = [
            c.add(doc(4, "Dragonmoor season 4 trailer shows dragons", 12)),
            c.add(doc(5, "New Dragonmoor trailer: season 4 dragons", 15)),
        ]
        assert len({p.story for p in game}) == 1 and len({p.story for p in show}) == 1
        assert game[0].story != show[0].story
        roundup = "Skyforge launch and Dragonmoor season 4 trailer: the week's Xbox One"
        c.add(doc(6, roundup, 20))
        return c, game[0].story, show[0].story

    c, game, show = stories(CONFIG)
    assert c.merges == [] and c.resolve(game) != c.resolve(show)
    # What keeps them apart is the stories' own agreement: without it, the round-up merges them.
    c, game, show = stories(replace(CONFIG, merge_agreement=0.0))
    assert c.merges == [(game, show)]


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


def test_a_story_is_out_of_reach_once_the_quiet_cost_alone_sinks_a_perfect_match() -> None:
    # the defaults: 1 - 0.08 * log2(1 + h) stays above 0.14 for far longer than the 24 h window
    assert reach(CONFIG) == CONFIG.window
    # a steeper cost: 1 - 0.43 * log2(1 + h) < 0.14 from h = 2 ** 2 - 1 = 3 h
    steep = replace(CONFIG, quiet_cost=0.43)
    assert reach(steep) == pytest.approx(timedelta(hours=3), abs=timedelta(seconds=1))
    assert reach(replace(CONFIG, quiet_cost=0.0)) == CONFIG.window
    title = "Quillon launches Aero 7 phone"
    for minutes, joins in ((170, True), (190, False)):
        c = StoryClusterer(steep)
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
    # a stream where "review" is common, as it is in any real one
    c = StoryClusterer(CONFIG, document_frequencies={"review": 300}, documents=10_000)
    for minute in range(5):
        c.add(doc(minute + 1, f"Titanfall review roundup part {minute + 1}", minute))
    c.add(doc(9, "Quillon phone review", 10))
    assert len(c.stories) == 2 and c.documents == 10_006
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
