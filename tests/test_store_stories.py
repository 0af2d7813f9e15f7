"""aggregator/store/stories.py on a real database file: clustering's state and corrections."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.errors import NotFoundError
from aggregator.models import StoredStory, StoryPlacement
from aggregator.store import Store

from .stored import HOUR, NOW, article, cluster, feed_id, new_store, save

A, B = "https://a.example/feed", "https://b.example/feed"


def stored(tmp_path: Path, count: int = 4) -> tuple[Store, list[int]]:
    store = new_store(tmp_path, A, B)
    titles = [article(f"Article {n}", published=NOW + n * HOUR) for n in range(count)]
    return store, save(store, feed_id(store, A), titles)


def test_unclustered_then_clustered_documents(tmp_path: Path) -> None:
    store, ids = stored(tmp_path)
    assert [d.key for d in store.unclustered()] == ids
    assert all(d.story is None and d.source == A for d in store.unclustered())
    first, second = cluster(store, ids[:2], ids[2:3])
    assert [d.key for d in store.unclustered()] == [ids[3]]
    assert {d.key: d.story for d in store.clustered()} == {
        ids[0]: first,
        ids[1]: first,
        ids[2]: second,
    }
    assert [d.key for d in store.story_docs([second, first])] == ids[:3]  # in time order
    # Open to new articles: stories last seen at or after the time given.
    assert {d.story for d in store.active(NOW + 2 * HOUR, latest=10)} == {second}
    # Each story's latest articles only, in time order: a long story costs no more.
    assert [d.key for d in store.active(NOW, latest=10)] == ids[:3]
    assert [d.key for d in store.active(NOW, latest=1)] == [ids[1], ids[2]]
    # Stories begun before began_since are past their span: not loaded.
    assert {d.story for d in store.active(NOW, latest=10, began_since=NOW + HOUR)} == {second}
    assert store.stories_began([first, second]) == {first: NOW, second: NOW + 2 * HOUR}


def test_save_clustering_counts_documents_and_term_frequencies(tmp_path: Path) -> None:
    store, ids = stored(tmp_path, 2)
    store.save_clustering(
        placements=[StoryPlacement(ids[0], -1, -1, None, ("alpha",))],
        new_story_keys={-1: ids[0]},
        stories=[StoredStory(-1, "Alpha", ("alpha",))],
        df_increments={"alpha": 2, "beta": 1},
        documents=7,
        now=NOW,
    )
    assert store.document_count() == 7
    assert store.document_frequencies(["alpha", "beta", "gamma"]) == {"alpha": 2, "beta": 1}
    store.replace_term_frequencies({"gamma": 3})
    assert store.document_frequencies(["alpha", "gamma"]) == {"gamma": 3}


def test_a_story_id_is_never_reused_after_a_merge(tmp_path: Path) -> None:
    store, ids = stored(tmp_path)
    first, second = cluster(store, ids[:1], ids[1:2])
    store.merge_stories(first, [second])
    assert store.resolve_story(second) == first
    assert store.story_articles(second) == ids[:2]
    (third,) = cluster(store, ids[2:3])
    assert third > second  # the alias keeps its id
    with pytest.raises(NotFoundError, match="no story with id 999"):
        store.resolve_story(999)


def test_moving_articles_keeps_their_old_story_apart_from_the_new_one(tmp_path: Path) -> None:
    store, ids = stored(tmp_path)
    (story,) = cluster(store, ids)
    new = store.move_articles(ids[2:], to=None, now=NOW)
    assert new != story
    assert store.stories_of(ids) == {ids[0]: story, ids[1]: story, ids[2]: new, ids[3]: new}
    assert store.stories_apart() == [(min(story, new), max(story, new))]
    # Moving the last article out of a story folds the emptied story into the target.
    assert store.move_articles(ids[:2], to=new, now=NOW) == new
    assert store.resolve_story(story) == new
    assert store.stories_apart() == []


def test_stories_of_names_every_unknown_article(tmp_path: Path) -> None:
    store, ids = stored(tmp_path, 1)
    assert store.stories_of(ids) == {ids[0]: None}
    with pytest.raises(NotFoundError, match="no article with id 98, 99"):
        store.stories_of([ids[0], 98, 99])


def test_mark_read_counts_only_what_changed_past_one_chunk(tmp_path: Path) -> None:
    store, ids = stored(tmp_path, 1200)
    assert store.mark_read(ids[:700], read=True) == 700
    assert store.mark_read(ids, read=True) == 500  # the first 700 were read already
    assert store.mark_read([*ids[:3], *ids[:3]], read=False) == 3
    unread = store.db.execute("SELECT COUNT(*) FROM articles WHERE read = 0").fetchone()[0]
    assert unread == 3


def test_muting_flips_flags_and_names_the_stories_to_summarise_again(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    a, b = feed_id(store, A), feed_id(store, B)
    (sport,) = save(store, a, [article("Cup final tonight")])
    (rates,) = save(store, b, [article("Rates rise again")])
    sport_story, rates_story = cluster(store, [sport], [rates])
    assert not store.mute_is_current('"cup"')
    assert store.mute_articles('"cup"', [], rules='"cup"') == [sport_story]
    assert store.mute_is_current('"cup"')
    assert store.mute_articles('"cup"', [], rules='"cup"') == []  # nothing new to look at
    muted = {d.key: d.muted for d in store.clustered()}
    assert muted == {sport: True, rates: False}
    # A feed rule mutes what only that feed carries; the old term rule is dropped.
    assert store.mute_articles(None, [B], rules="feeds:b") == [sport_story, rates_story]
    assert {d.key: d.muted for d in store.clustered()} == {sport: False, rates: True}


def test_refresh_stories_recounts_muted_articles_out_of_the_figures(tmp_path: Path) -> None:
    store, ids = stored(tmp_path, 3)
    (story,) = cluster(store, ids)
    store.mute_articles('"2"', [], rules="2")
    store.refresh_stories([StoredStory(story, "Renamed", ("x",))], NOW)
    (record,) = store.story_records([story])
    assert (record.title, record.size, record.terms) == ("Renamed", 2, ("x",))
    # First and last seen still count the muted article: muting never moves articles.
    assert (record.first_seen, record.last_seen) == (NOW, NOW + 2 * HOUR)
