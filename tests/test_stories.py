"""Stories as the user sees and corrects them: --why, status, ranking, merge, split and move.

Databases are real SQLite files in tmp_path, filled the way a poll fills them (store, then
cluster_pending), and the commands run through click's CliRunner.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aggregator.cluster import StoryClusterer, quiet_cost
from aggregator.config import ClusteringConfig, Config
from aggregator.dedupe import IngestPlan
from aggregator.errors import CorrectionError, NotFoundError
from aggregator.listing import get_story, ranked_stories
from aggregator.models import Article, ClusterDoc, FeedConfig, FeedStatus, FeedUpdate, StoryFigures
from aggregator.ranking import rank, story_status
from aggregator.render import render_story
from aggregator.store import open_store
from aggregator.stories import cluster_pending, merge_stories, move_articles, split_story
from cli import cli
from tests.conftest import FeedServer, rss

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

HARBOUR = [
    "Harbour bridge vote: Tamsford council backs replacement of old span",
    "Tamsford council votes to replace harbour bridge after long debate",
    "Tamsford harbour bridge will be replaced, council decides",
]
FLOOD = [
    "River Ull bursts its banks, flooding Kelby road",
    "Floods close Kelby road as River Ull bursts banks",
]
# Close to both: what would merge them, were they not kept apart.
BRIDGE = "Tamsford council delays harbour bridge vote as River Ull floods Kelby road"


class World:
    """A database with feeds, filled and clustered as a poll would."""

    def __init__(self, path: Path) -> None:
        self.config = Config(database=path)
        self.store = open_store(path)
        self.feeds = [f"https://outlet{n}.example/feed" for n in range(6)]
        self.store.sync_feeds([FeedConfig(url) for url in self.feeds], NOW)
        self.ids = {f.url: f.id for f in self.store.feeds()}
        self._n = 0

    def publish(self, title: str, at: datetime, outlet: int | None = None) -> int:
        """Store one article from the next outlet (or ``outlet``); returns its id."""
        self._n += 1
        url = self.feeds[self._n % len(self.feeds) if outlet is None else outlet]
        article = Article(
            feed_url=url,
            guid=f"g{self._n}",
            url=f"{url.removesuffix('/feed')}/{self._n}",
            canonical_url=f"{url.removesuffix('/feed')}/{self._n}",
            title=title,
            summary="",
            published=at,
            first_seen=at,
            content_hash=f"h{self._n}",
        )
        update = FeedUpdate(status=FeedStatus.OK, fetched_at=at, next_due=at)
        (article_id,) = self.store.save_poll(
            self.ids[url], IngestPlan(new=[article], duplicates=[], seen=0), update
        )
        return article_id

    def cluster(self, now: datetime = NOW) -> None:
        cluster_pending(self.store, self.config, now=now)

    def story_of(self, article_id: int) -> int:
        story = self.store.stories_of([article_id])[article_id]
        assert story is not None
        return story


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "a.db")
    yield w
    w.store.close()


def published(world: World, titles: list[str], start: datetime) -> list[int]:
    return [world.publish(t, start + timedelta(minutes=10 * i)) for i, t in enumerate(titles)]


# --- why --------------------------------------------------------------------------------------


def test_why_names_the_similarity_and_the_shared_terms(world: World) -> None:
    ids = published(world, HARBOUR, NOW - timedelta(hours=1))
    world.cluster()
    story = get_story(world.store, world.story_of(ids[0]), now=NOW)
    assert [a.id for a in story.articles] == ids
    founder, *joined = story.articles
    assert founder.similarity is None and founder.placed_by == "cluster"
    assert founder.placed_in == story.id
    for article in joined:
        assert article.similarity is not None and article.similarity >= 0.12
        # the terms it shared are words of its own headline and of the story before it
        assert {"tamsford", "bridge", "harbour"} & set(article.shared_terms)
        assert all(t in article.title.lower() for t in article.shared_terms)
        # what made the similarity: the cosine, less the cost of the story's 10 minutes quiet
        assert article.cosine is not None and article.quiet_hours == round(10 / 60, 2)
        assert article.cosine - article.similarity == pytest.approx(
            quiet_cost(world.config.clustering, timedelta(minutes=10)), abs=1e-3
        )
    text = " ".join(render_story(story, why=True).split())  # as one line, however wrapped
    assert "why: began this story" in text
    first = joined[0]
    assert first.cosine is not None and first.similarity is not None
    cost = round(first.cosine, 2) - round(first.similarity, 2)
    assert cost >= 0.01  # the story had been quiet for 10 minutes
    assert (
        f"why: similarity {first.similarity:.2f}: cosine {first.cosine:.2f} less {cost:.2f}"
        " for 10 min quiet; shares " in text
    )
    why = story.to_json(why=True)["articles"][1]["why"]
    assert why["similarity"] == first.similarity
    assert why["cosine"] == first.cosine and why["quiet_hours"] == first.quiet_hours
    assert why["shared_terms"] == list(first.shared_terms)
    assert "why" not in story.to_json()["articles"][1]


def test_a_story_that_continues_the_next_day_keeps_its_id(world: World) -> None:
    """Across runs on a real database: coverage that comes back after a quiet night joins the
    story it continues, and --why shows the time it paid for."""
    evening = NOW - timedelta(hours=20)
    ids = published(world, HARBOUR, evening)
    world.cluster(evening + timedelta(minutes=30))
    story = world.story_of(ids[0])
    morning = world.publish("Tamsford harbour bridge replacement: council vote stands", NOW)
    unrelated = world.publish("Kelby bakery wins regional bread award", NOW)
    world.cluster(NOW + timedelta(minutes=1))
    assert world.story_of(morning) == story
    assert world.story_of(unrelated) != story
    view = get_story(world.store, story, now=NOW)
    joined = next(a for a in view.articles if a.id == morning)
    assert joined.quiet_hours == pytest.approx(19.67, abs=0.01)
    assert " h quiet; shares" in " ".join(render_story(view, why=True).split())


def test_why_says_which_story_an_article_joined_before_a_merge(world: World) -> None:
    clusterer = StoryClusterer(ClusteringConfig())
    a = clusterer.add(ClusterDoc(1, "Velmora ceasefire agreed", "", "x", NOW))
    b = clusterer.add(ClusterDoc(2, "Varnek Deslin truce", "", "y", NOW))
    bridge = clusterer.add(
        ClusterDoc(3, "Velmora ceasefire: Varnek Deslin truce agreed", "", "z", NOW)
    )
    assert a.story != b.story and clusterer.resolve(b.story) == a.story
    assert bridge.story == a.story
    # The same seen through the store: the article that began the absorbed story says so.
    ids = [
        world.publish("Velmora ceasefire agreed at Lindqvar", NOW),
        world.publish("Varnek and Deslin sign truce", NOW + timedelta(minutes=5)),
    ]
    world.cluster()
    absorbed = world.story_of(ids[1])
    assert absorbed != world.story_of(ids[0])
    world.publish(
        "Velmora ceasefire: Varnek and Deslin sign truce at Lindqvar", NOW + timedelta(minutes=9)
    )
    world.cluster()
    story = get_story(world.store, absorbed, now=NOW)
    assert story.id == world.story_of(ids[0])  # the absorbed id leads to the survivor
    moved = next(a for a in story.articles if a.id == ids[1])
    assert moved.placed_in == absorbed
    text = render_story(story, why=True)
    assert f"began story {absorbed}, which was merged into story {story.id}" in text


# --- status and ranking -----------------------------------------------------------------------


def test_status_is_new_then_growing_then_quiet() -> None:
    six = timedelta(hours=6)
    assert story_status(NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW, six) == "new"
    assert story_status(NOW - timedelta(hours=20), NOW - timedelta(hours=1), NOW, six) == "growing"
    assert story_status(NOW - timedelta(hours=20), NOW - timedelta(hours=7), NOW, six) == "quiet"
    # the edges: exactly six hours ago still counts as recent
    assert story_status(NOW - six, NOW - six, NOW, six) == "new"


def figures(
    id: int, sources: int, hours_ago: float, *, size: int = 0, recent: int = 0
) -> StoryFigures:
    last = NOW - timedelta(hours=hours_ago)
    return StoryFigures(id, size or sources, sources, last - timedelta(hours=3), last, recent)


def test_ranking_weighs_outlets_above_volume_and_fades_with_age() -> None:
    wide = figures(1, sources=8, hours_ago=1)
    loud = figures(2, sources=1, hours_ago=0, size=30, recent=1)  # one outlet posting updates
    stale = figures(3, sources=12, hours_ago=30)  # yesterday's big story
    fresh_pair = figures(4, sources=2, hours_ago=0.1, recent=2)
    assert [s.id for s in rank([stale, loud, fresh_pair, wide], NOW)] == [1, 4, 2, 3]


def test_ranking_prefers_a_story_still_gathering_articles() -> None:
    growing = figures(1, sources=4, hours_ago=1, recent=3)
    finished = figures(2, sources=4, hours_ago=1, recent=0)
    assert [s.id for s in rank([finished, growing], NOW)] == [1, 2]


def test_store_lists_stories_in_rank_order_with_status(world: World) -> None:
    old = published(world, HARBOUR, NOW - timedelta(hours=30))
    new = published(world, FLOOD, NOW - timedelta(hours=1))
    world.cluster()
    listed = ranked_stories(world.store, since=None, min_size=1, limit=0, now=NOW)
    assert [s.id for s in listed] == [world.story_of(new[0]), world.story_of(old[0])]
    assert [s.status for s in listed] == ["new", "quiet"]
    assert [
        s.id for s in ranked_stories(world.store, since=None, min_size=1, limit=1, now=NOW)
    ] == [listed[0].id]


# --- corrections --------------------------------------------------------------------------------


def two_stories(world: World) -> tuple[list[int], list[int]]:
    harbour = published(world, HARBOUR, NOW - timedelta(hours=2))
    flood = published(world, FLOOD, NOW - timedelta(hours=1))
    world.cluster()
    assert world.story_of(harbour[0]) != world.story_of(flood[0])
    return harbour, flood


def test_merge_keeps_the_older_id_and_the_other_becomes_an_alias(world: World) -> None:
    harbour, flood = two_stories(world)
    older, newer = world.story_of(harbour[0]), world.story_of(flood[0])
    merged = merge_stories(world.store, world.config, [newer, older], now=NOW)
    assert merged.id == older and merged.size == 5
    assert get_story(world.store, newer).id == older
    assert {world.story_of(a) for a in harbour + flood} == {older}
    # the headline and terms were recomputed over all five articles
    assert set(merged.terms) & {"river", "floods", "flooding", "banks", "ull"}
    # a later article about the flood joins the merged story, and the merge holds
    later = world.publish("Kelby road still closed by River Ull floods", NOW)
    world.cluster(NOW + timedelta(minutes=5))
    assert world.story_of(later) == older
    assert get_story(world.store, older).size == 6


def test_a_merged_id_is_never_handed_out_again(world: World) -> None:
    harbour, flood = two_stories(world)
    older, newer = world.story_of(harbour[0]), world.story_of(flood[0])
    assert newer > older  # the highest id is the one that becomes an alias
    merge_stories(world.store, world.config, [older, newer], now=NOW)
    fresh = world.publish("Quillon unveils a folding phone", NOW)
    world.cluster()
    assert world.story_of(fresh) > newer
    assert get_story(world.store, newer).id == older


def test_split_holds_when_a_later_article_bridges_the_two(world: World) -> None:
    harbour, flood = two_stories(world)
    story = merge_stories(
        world.store, world.config, [world.story_of(harbour[0]), world.story_of(flood[0])], now=NOW
    )
    split = split_story(world.store, world.config, story.id, flood, now=NOW)
    assert split.id not in (story.id,) and [a.id for a in split.articles] == flood
    assert all(a.placed_by == "user" for a in split.articles)
    assert split.title in FLOOD
    assert get_story(world.store, story.id).size == len(harbour)
    assert world.store.stories_apart() == [(min(story.id, split.id), max(story.id, split.id))]
    # An article close to both would merge them (it is what merged them in the first place)...
    bridge = BRIDGE
    clusterer = StoryClusterer(ClusteringConfig())
    a = clusterer.add(ClusterDoc(1, HARBOUR[0], "", "x", NOW))
    b = clusterer.add(ClusterDoc(2, FLOOD[1], "", "y", NOW))
    clusterer.add(ClusterDoc(3, bridge, "", "z", NOW))
    assert clusterer.resolve(b.story) == a.story, "the bridging headline must merge them unaided"
    # ...but not once the user split them.
    world.publish(bridge, NOW + timedelta(minutes=1))
    world.cluster(NOW + timedelta(minutes=2))
    assert world.story_of(harbour[0]) == story.id
    assert {world.story_of(a) for a in flood} == {split.id}
    assert get_story(world.store, story.id).size + get_story(world.store, split.id).size == 6


def test_kept_apart_passes_to_the_story_a_split_story_merges_into() -> None:
    clusterer = StoryClusterer(ClusteringConfig(), apart=[(10, 20)])
    clusterer.load(
        [
            ClusterDoc(1, HARBOUR[0], "", "x", NOW, story=10),
            ClusterDoc(2, FLOOD[0], "", "y", NOW, story=20),
            ClusterDoc(3, FLOOD[1], "", "y", NOW, story=30),
        ]
    )
    # story 30 converges with 20 and absorbs it (or the reverse): still apart from 10
    clusterer.add(
        ClusterDoc(4, "River Ull floods Tamsford harbour road, banks burst", "", "z", NOW)
    )
    survivor = clusterer.resolve(20)
    assert clusterer.resolve(30) == survivor != 10
    bridge = BRIDGE
    clusterer.add(ClusterDoc(5, bridge, "", "z", NOW))
    assert clusterer.resolve(10) == 10 and clusterer.resolve(survivor) == survivor


def test_move_puts_articles_in_another_story_and_keeps_their_old_one_apart(world: World) -> None:
    harbour, flood = two_stories(world)
    h, f = world.story_of(harbour[0]), world.story_of(flood[0])
    placed = next(a for a in get_story(world.store, h).articles if a.id == harbour[2])
    assert placed.cosine is not None and placed.quiet_hours is not None
    moved = move_articles(world.store, world.config, [harbour[2]], to=f, now=NOW)
    assert moved.id == f and harbour[2] in [a.id for a in moved.articles]
    # what placed it no longer applies: the user did
    why = next(a for a in moved.articles if a.id == harbour[2])
    assert why.placed_by == "user" and why.similarity is None
    assert why.cosine is None and why.quiet_hours is None
    assert get_story(world.store, h).size == 2
    assert world.store.stories_apart() == [(min(h, f), max(h, f))]
    # moving a story's last articles away leaves no empty story: its id leads to the target
    move_articles(world.store, world.config, harbour[:2], to=f, now=NOW)
    assert get_story(world.store, h).id == f
    assert world.store.stories_apart() == []


def test_corrections_that_cannot_be_done_say_why(world: World) -> None:
    harbour, flood = two_stories(world)
    h, f = world.story_of(harbour[0]), world.story_of(flood[0])
    with pytest.raises(CorrectionError, match="already one story"):
        merge_stories(world.store, world.config, [h, h], now=NOW)
    with pytest.raises(CorrectionError, match="every article of story"):
        split_story(world.store, world.config, h, harbour, now=NOW)
    with pytest.raises(CorrectionError, match=f"article {flood[0]} is not in story {h}"):
        split_story(world.store, world.config, h, [flood[0]], now=NOW)
    with pytest.raises(CorrectionError, match="already in story"):
        move_articles(world.store, world.config, [flood[0]], to=f, now=NOW)
    with pytest.raises(NotFoundError, match="no story with id 999"):
        merge_stories(world.store, world.config, [h, 999], now=NOW)
    with pytest.raises(NotFoundError, match="no article with id 999"):
        move_articles(world.store, world.config, [999], to=f, now=NOW)
    unplaced = world.publish("Not clustered yet", NOW)
    with pytest.raises(CorrectionError, match="not in a story yet"):
        move_articles(world.store, world.config, [unplaced], to=f, now=NOW)
    # nothing changed
    assert get_story(world.store, h).size == 3 and get_story(world.store, f).size == 2
    assert world.store.stories_apart() == []


# --- the commands -----------------------------------------------------------------------------


def run(runner: CliRunner, db: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["--config", str(db.with_suffix(".yaml")), "--db", str(db), *args])
    return result.exit_code, result.stdout, result.stderr


def test_story_commands_show_explain_merge_split_and_move(
    tmp_path: Path, runner: CliRunner
) -> None:
    db = tmp_path / "a.db"
    db.with_suffix(".yaml").write_text("feeds: []\n")
    w = World(db)
    harbour, flood = two_stories(w)
    h, f = w.story_of(harbour[0]), w.story_of(flood[0])
    w.store.close()

    code, out, _ = run(runner, db, "story", str(h), "--why")
    assert code == 0 and "why: began this story" in out and "why: similarity" in out
    code, out, _ = run(runner, db, "story", "--json", str(h), "--why")
    assert json.loads(out)["articles"][1]["why"]["shared_terms"]

    code, out, _ = run(runner, db, "story", "merge", str(h), str(f))
    assert code == 0 and out.startswith(f"merged into story {min(h, f)}: [{min(h, f)}]")
    code, out, _ = run(runner, db, "story", "split", str(h), *map(str, flood), "--json")
    new = json.loads(out)
    assert code == 0 and [a["id"] for a in new["articles"]] == flood
    code, out, _ = run(runner, db, "story", "move", str(harbour[0]), "--to", str(new["id"]))
    assert code == 0 and out == (
        f"moved to story {new['id']}: [{new['id']}] {new['title']} (3 articles)\n"
    )
    code, out, err = run(runner, db, "story", "split", str(h), "12345")
    assert code == 1 and "Error: no article with id 12345" in err and "Traceback" not in err
    code, out, err = run(runner, db, "-q", "story", "merge", str(h), str(new["id"]))
    assert code == 0 and out == ""


def test_story_help_lists_the_corrections(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["story", "--help"])
    assert result.exit_code == 0
    for command in ("show", "merge", "split", "move"):
        assert f"  {command} " in result.stdout
    assert "aggregator story 12 --why" in result.stdout


def test_term_counts_made_per_article_are_recounted_per_story(world: World) -> None:
    two_stories(world)
    counted = dict(world.store.db.execute("SELECT term, df FROM term_df").fetchall())
    assert counted["tamsford"] == 1 and counted["ull"] == 1  # once per story, not per article
    # A database from before migration 4 counted articles: it is recounted on the next run.
    world.store.db.execute("DELETE FROM _migrations WHERE id = 4")
    world.store.db.execute("UPDATE term_df SET df = 3 WHERE term = 'tamsford'")
    world.store.db.conn.commit()
    world.store.close()
    world.store = open_store(world.config.database)
    assert world.store.get_meta("recount_terms") == "1"
    assert world.store.document_frequencies(["tamsford"]) == {}
    world.publish("Kelby road reopens after River Ull floods", NOW)
    world.cluster(NOW + timedelta(minutes=1))
    assert world.store.get_meta("recount_terms") is None
    recounted = dict(world.store.db.execute("SELECT term, df FROM term_df").fetchall())
    assert recounted == {**counted, "reopens": 1}


# --- across polls, through the CLI --------------------------------------------------------------


def test_a_story_that_continues_the_next_day_keeps_its_id_through_polls(
    runner: CliRunner, feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """Real polls of real feeds over loopback into a real database: the evening's coverage of
    two events, merged by the user; the next morning's follow-ups of each join the merged story,
    which keeps its id, --why shows the night's quiet and the digest shows it as grown."""
    now = datetime.now(UTC)
    evening, morning = now - timedelta(hours=20), now - timedelta(minutes=10)

    def serve(outlet: int, title: str | None, at: datetime) -> str:
        """Outlet n's feed, with this one item (or none yet)."""
        items = []
        if title is not None:
            guid = f"{at:%H%M}-{outlet}"
            link = f"https://o{outlet}.example/{guid}"
            items = [{"guid": guid, "link": link, "title": title, "pubDate": format_datetime(at)}]
        return feed_server.add(f"/o{outlet}.xml", body=rss(f"Outlet {outlet}", items))

    # Five outlets cover two events in the evening; three more have nothing yet.
    titles = [*HARBOUR, *FLOOD, None, None, None]
    config = write_config([serve(n, title, evening) for n, title in enumerate(titles)])

    def cli_json(*args: str) -> Any:
        result = runner.invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout

    cli_json("poll", "--all")
    stories = {s["title"]: s["id"] for s in cli_json("stories", "--json", "--min-size", "1")}
    harbour = next(i for t, i in stories.items() if t in HARBOUR)
    flood = next(i for t, i in stories.items() if t in FLOOD)
    assert harbour != flood
    cli_json("story", "merge", str(harbour), str(flood))  # the user's correction
    merged = min(harbour, flood)
    assert cli_json("digest").startswith("aggregator digest: 1 story\n")

    # The next morning, the three new outlets bring two follow-ups and something else.
    follow_ups = [
        "Tamsford harbour bridge replacement: council vote stands",
        "Kelby road reopens as River Ull floods recede",
        "Kelby bakery wins regional bread award",
    ]
    for n, title in enumerate(follow_ups, start=5):
        serve(n, title, morning)
    cli_json("poll", "--all")
    story = cli_json("story", "--json", str(merged), "--why")
    assert story["id"] == merged
    articles = {a["title"]: a for a in story["articles"]}
    assert set(articles) == {*HARBOUR, *FLOOD, *follow_ups[:2]}
    joined = articles[follow_ups[0]]["why"]
    assert joined["quiet_hours"] > 19 and joined["cosine"] > joined["similarity"]
    assert cli_json("story", "--json", str(max(harbour, flood)))["id"] == merged  # an alias
    # The next digest shows it again, as grown by two sources.
    again = cli_json("digest")
    assert again.startswith("aggregator digest: 1 story (1 grown)")
    assert "+2 sources since your last digest" in again
