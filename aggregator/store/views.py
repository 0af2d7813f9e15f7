"""What browsing reads: stories' figures and contents, articles, search, and the counts."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from ..errors import NotFoundError
from ..models import ArticleView, Duplicate, Highlight, StoryFigures, StoryRecord
from .base import FEED_NAME, as_dt, storage_error, ts
from .stories import StoryStore
from .summaries import read_summary

__all__ = ["BrowsingStore"]

# What FTS5 puts around each match; neither can be in stored text (normalize drops controls).
_MARK, _END = "\x02", "\x03"


class BrowsingStore(StoryStore):
    """Reads for `stories`, `story`, `articles`, `search`, the browser and digests.

    Ranking and a story's status are not decided here: ``story_figures`` hands ranking what it
    needs, and ``story_records`` the stories it chose (see aggregator.listing).
    """

    def story_figures(
        self,
        *,
        since: datetime | None,
        min_size: int,
        recent_since: datetime,
        unread: bool = False,
        feeds: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> list[StoryFigures]:
        """What ranking needs of each story with an article, or a copy of one in another feed,
        first seen since ``since``. ``min_size`` is the fewest articles or sources: a wire
        article carried by three outlets is one article with three sources.

        ``recent_since`` is how far back velocity counts outlets. ``unread`` keeps stories with
        an article not read; ``feeds`` (URLs or titles) and ``tags`` keep stories that one of
        those feeds carries.
        """
        params: dict[str, Any] = {"min_size": min_size}
        # Only what ranking needs, for every candidate; the rest for the few shown.
        chosen = """SELECT s.id, s.size, s.source_count, s.first_seen, s.last_seen
                    FROM stories s WHERE (s.size >= :min_size OR s.source_count >= :min_size)"""
        if since is not None:
            chosen += " AND s.seen_at >= :since"
            params["since"] = ts(since)
        if unread:
            chosen += """ AND s.id IN (SELECT sa.story_id FROM story_articles sa
                                         JOIN articles a ON a.id = sa.article_id
                                         WHERE a.read = 0 AND a.muted = 0)"""
        if feeds or tags:
            params["feeds"] = json.dumps(list(feeds))
            params["tags"] = json.dumps(list(tags))
            chosen += """ AND s.id IN (
                SELECT sa.story_id FROM story_articles sa
                JOIN items i ON i.article_id = sa.article_id JOIN feeds f ON f.id = i.feed_id
                JOIN articles a ON a.id = sa.article_id
                WHERE a.muted = 0 AND (f.url IN (SELECT value FROM json_each(:feeds))
                   OR COALESCE(f.title, f.feed_title) IN (SELECT value FROM json_each(:feeds))
                   OR EXISTS (SELECT 1 FROM json_each(f.tags)
                              WHERE value IN (SELECT value FROM json_each(:tags)))))"""
        try:  # tuples straight from sqlite3: tens of thousands of rows on a wide window
            candidates = self.db.conn.execute(chosen, params).fetchall()
        except sqlite3.Error as e:
            raise storage_error(self.path, e) from e
        velocity = self._recent_counts(since=recent_since)
        return [
            StoryFigures(
                id=id,
                size=size,
                sources=sources,
                first_seen=as_dt(first),
                last_seen=as_dt(last),
                recent=velocity.get(id, 0),
            )
            for id, size, sources, first, last in candidates
        ]

    def _recent_counts(self, *, since: datetime) -> dict[int, int]:
        """Outlets that published an article of each story since ``since``."""
        rows = self._rows(
            """SELECT sa.story_id, COUNT(DISTINCT a.feed_id) AS n FROM articles a
               JOIN story_articles sa ON sa.article_id = a.id
               WHERE a.published >= ? AND a.muted = 0 GROUP BY sa.story_id""",
            [ts(since)],
        )
        return {r["story_id"]: r["n"] for r in rows}

    def story_records(
        self, story_ids: Sequence[int], *, with_articles: bool | Literal["outlets"] = True
    ) -> list[StoryRecord]:
        """These stories, in this order; each with its articles when ``with_articles``, or
        with ``"outlets"`` only each outlet's first article with a web link (what a digest's
        links are chosen from: a story of thousands of articles reads a few)."""
        rows = {
            r["id"]: r
            for r in self._rows_in("SELECT * FROM stories WHERE id IN ({marks})", story_ids)
        }
        return [self._story_record(rows[id], with_articles=with_articles) for id in story_ids]

    def story_record(self, story_id: int) -> StoryRecord:
        """One story with its articles; the id of a story merged into another leads to the
        survivor."""
        row = self._one("SELECT * FROM stories WHERE id = ?", [self.resolve_story(story_id)])
        assert row is not None
        return self._story_record(row, with_articles=True)

    def _story_record(
        self, row: dict[str, Any], *, with_articles: bool | Literal["outlets"]
    ) -> StoryRecord:
        sources = [
            r["name"]
            for r in self._rows(
                # One name per feed (as source_count counts them), duplicates' feeds included.
                f"""SELECT {FEED_NAME} AS name FROM story_articles sa
                    JOIN articles a ON a.id = sa.article_id AND a.muted = 0
                    JOIN items i ON i.article_id = sa.article_id JOIN feeds f ON f.id = i.feed_id
                    WHERE sa.story_id = ? GROUP BY f.id ORDER BY name, f.id""",
                [row["id"]],
            )
        ]
        articles: tuple[ArticleView, ...] = ()
        if with_articles == "outlets":
            articles = tuple(
                self._article_views(
                    """a.id IN (SELECT id FROM (
                         SELECT a.id, ROW_NUMBER() OVER (
                           PARTITION BY a.feed_id ORDER BY a.published, a.id) AS nth
                         FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                         WHERE sa.story_id = :story AND a.muted = 0
                           AND (a.url LIKE 'http://%' OR a.url LIKE 'https://%'))
                       WHERE nth = 1)""",
                    {"story": row["id"]},
                    order="a.published, a.id",
                )
            )
        elif with_articles:
            articles = tuple(
                self._article_views(
                    "sa.story_id = :story AND a.muted = 0",
                    {"story": row["id"]},
                    order="a.published, a.id",
                )
            )
        if with_articles is True:  # the articles say it: no query for it
            unread = sum(not a.read for a in articles)
        else:
            count = self._one(
                """SELECT COUNT(*) AS n FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id
                   WHERE sa.story_id = ? AND a.read = 0 AND a.muted = 0""",
                [row["id"]],
            )
            unread = count["n"] if count else 0
        return StoryRecord(
            id=row["id"],
            title=row["title"],
            size=row["size"],
            sources=tuple(sources),
            first_seen=as_dt(row["first_seen"]),
            last_seen=as_dt(row["last_seen"]),
            terms=tuple(json.loads(row["terms"])),
            articles=articles,
            unread=unread,
            summary=read_summary(row["summary"]),
        )

    def article_views(self, article_ids: Sequence[int]) -> list[ArticleView]:
        """The articles with these ids; an unknown id is an error."""
        self.stories_of(article_ids)  # raises NotFoundError for an unknown id
        return self._article_views(
            "a.id IN (SELECT value FROM json_each(:ids))",
            {"ids": json.dumps([int(i) for i in article_ids])},
            order="a.id",
        )

    def articles(
        self, *, since: datetime | None, limit: int, saved: bool = False
    ) -> list[ArticleView]:
        """Articles first seen since ``since``, newest first; muted ones are left out.
        ``saved``: only the saved ones."""
        where, params = "a.muted = 0", {}
        if since is not None:
            where, params = "a.muted = 0 AND a.first_seen >= :since", {"since": ts(since)}
        if saved:
            where += " AND a.saved_at IS NOT NULL"
        return self._article_views(where, params, order="a.published DESC, a.id DESC", limit=limit)

    def search(
        self,
        query: str,
        *,
        limit: int,
        since: datetime | None = None,
        muted: bool = True,
        saved: bool = False,
    ) -> list[ArticleView]:
        """Full-text search over titles and summaries, newest first (news ages fast), each
        with its matches highlighted. Muted articles are found too unless ``muted`` is false:
        a search names what it looks for. ``saved``: only saved articles."""
        where, params = "articles_fts MATCH :q", {"q": _fts_query(query)}
        if not muted:
            where += " AND a.muted = 0"
        if saved:
            where += " AND a.saved_at IS NOT NULL"
        if since is not None:
            where, params = f"{where} AND a.first_seen >= :since", {**params, "since": ts(since)}
        return self._article_views(
            where, params, order="a.published DESC, a.id DESC", limit=limit, matching=True
        )

    def _article_views(
        self,
        where: str,
        params: dict[str, Any],
        *,
        order: str,
        limit: int = 0,
        matching: bool = False,
    ) -> list[ArticleView]:
        """``matching``: ``where`` holds an FTS5 MATCH, and each view gets its highlights."""
        found = ""
        if matching:
            found = f""", highlight(articles_fts, 0, '{_MARK}', '{_END}') AS title_match,
                         snippet(articles_fts, 1, '{_MARK}', '{_END}', '…', 24) AS snippet
                      FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"""
        sql = f"""SELECT a.id, a.title, a.url, a.summary, a.published, a.first_seen,
                         sa.story_id, sa.similarity, sa.shared_terms, sa.placed_in, sa.placed_by,
                         sa.cosine, sa.quiet_hours,
                         a.read, a.muted, a.saved_at, {FEED_NAME} AS feed
                         {found or "FROM articles a"} JOIN feeds f ON f.id = a.feed_id
                  LEFT JOIN story_articles sa ON sa.article_id = a.id
                  WHERE {where} ORDER BY {order}"""
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self._rows(sql, params)
        dupes = self._duplicates([r["id"] for r in rows])
        return [
            ArticleView(
                id=r["id"],
                title=r["title"],
                url=r["url"],
                feed=r["feed"],
                published=as_dt(r["published"]),
                first_seen=as_dt(r["first_seen"]),
                story_id=r["story_id"],
                summary=r["summary"],
                duplicates=tuple(dupes.get(r["id"], ())),
                similarity=r["similarity"],
                shared_terms=tuple(json.loads(r["shared_terms"] or "[]")),
                cosine=r["cosine"],
                quiet_hours=r["quiet_hours"],
                placed_in=r["placed_in"],
                placed_by=r["placed_by"],
                read=bool(r["read"]),
                muted=bool(r["muted"]),
                saved=r["saved_at"] is not None,
                title_match=_highlight(r["title_match"]) if matching else None,
                snippet=_highlight(r["snippet"]) if matching else None,
            )
            for r in rows
        ]

    def _duplicates(self, article_ids: list[int]) -> dict[int, list[Duplicate]]:
        """Every sighting of each article other than the one it was stored from."""
        found: dict[int, list[Duplicate]] = {}
        rows = self._rows_in(
            f"""SELECT i.article_id, i.url, {FEED_NAME} AS feed
                FROM items i JOIN feeds f ON f.id = i.feed_id
                JOIN articles a ON a.id = i.article_id
                WHERE i.article_id IN ({{marks}})
                  AND NOT (i.feed_id = a.feed_id AND i.url IS a.url)
                ORDER BY i.id""",
            article_ids,
        )
        for r in rows:
            found.setdefault(r["article_id"], []).append(Duplicate(url=r["url"], feed=r["feed"]))
        return found

    def counts(self) -> dict[str, int]:
        row = self._one(
            """SELECT (SELECT COUNT(*) FROM feeds WHERE enabled = 1) AS feeds,
                      (SELECT COUNT(*) FROM articles) AS articles,
                      (SELECT COUNT(*) FROM stories) AS stories"""
        )
        return dict(row or {})


def _highlight(marked: str | None) -> Highlight:
    """Text that FTS5 marked, as the text and the offsets of its matches."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    start = length = 0
    for piece in re.split(f"([{_MARK}{_END}])", marked or ""):
        if piece == _MARK:
            start = length
        elif piece == _END:
            joined = "".join(text)
            if spans and not joined[spans[-1][1] : start].strip():
                start = spans.pop()[0]  # the words of a phrase: one span
            spans.append((start, length))
        else:
            text.append(piece)
            length += len(piece)
    return Highlight("".join(text), tuple(spans))


def _fts_query(query: str) -> str:
    """Quote each word, so user input is searched for, never parsed as FTS5 syntax."""
    words = [w.replace('"', '""') for w in query.split()]
    if not words:
        raise NotFoundError("search needs at least one word")
    return " ".join(f'"{w}"' for w in words)
