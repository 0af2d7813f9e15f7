"""Stories as clustering keeps them, and the user's corrections: merges, moves, reads, mutes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..errors import NotFoundError
from ..models import ClusterDoc, StoredStory, StoryPlacement
from .base import FEED_NAME, StoreBase, as_dt, ts
from .schema import STORY_FIGURES

__all__ = ["StoryStore"]

# An article as the clusterer sees it (ClusterDoc), for a query that calls articles ``a`` and
# feeds ``f``; each query adds the story_id it knows.
_DOC_COLUMNS = f"a.id, a.title, a.summary, a.published, a.muted, {FEED_NAME} AS source"


class StoryStore(StoreBase):
    """Stories, their articles and term frequencies; aliases of merged stories; muted flags."""

    # -- clustering state --

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        rows = self._rows_in("SELECT term, df FROM term_df WHERE term IN ({marks})", terms)
        return {r["term"]: r["df"] for r in rows}

    def replace_term_frequencies(self, frequencies: dict[str, int]) -> None:
        """Start the frequencies afresh (the recount after migration 4)."""
        with self.transaction():
            self.db.execute("DELETE FROM term_df")
            self.db.conn.executemany(
                "INSERT INTO term_df (term, df) VALUES (?, ?)", list(frequencies.items())
            )
            self.db.execute("DELETE FROM meta WHERE key = 'recount_terms'")

    def clustered(self) -> list[ClusterDoc]:
        """Every article in a story, as the clusterer sees it."""
        rows = self._rows(
            f"""SELECT {_DOC_COLUMNS}, sa.story_id
                FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                JOIN feeds f ON f.id = a.feed_id"""
        )
        return [_doc(r) for r in rows]

    def document_count(self) -> int:
        return int(self.get_meta("documents") or 0)

    def unclustered(self) -> list[ClusterDoc]:
        """Articles in no story yet, in time order.

        A clustering run places every article stored before it, and ids only grow, so only
        ids above the highest placed one need looking at: no scan of the whole history.
        """
        rows = self._rows(
            f"""SELECT {_DOC_COLUMNS}, NULL AS story_id
                FROM articles a JOIN feeds f ON f.id = a.feed_id
                WHERE a.id > (SELECT COALESCE(MAX(article_id), 0) FROM story_articles)
                  AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
                ORDER BY a.published, a.id"""
        )
        return [_doc(r) for r in rows]

    def active(
        self, since: datetime, *, latest: int, began_since: datetime | None = None
    ) -> list[ClusterDoc]:
        """Articles of stories still open to new articles (last seen at or after ``since``,
        and begun at or after ``began_since``): each story's ``latest`` articles, so that a
        long story costs a poll no more than a short one."""
        rows = self._rows(
            f"""SELECT {_DOC_COLUMNS}, chosen.story_id FROM (
                  SELECT sa.story_id, sa.article_id, ROW_NUMBER() OVER (
                    PARTITION BY sa.story_id ORDER BY a.published DESC, a.id DESC) AS nth
                  FROM stories s
                  -- CROSS JOIN keeps this order: from the few active stories to their
                  -- articles (left to itself, SQLite walks every article by date).
                  CROSS JOIN story_articles sa ON sa.story_id = s.id
                  CROSS JOIN articles a ON a.id = sa.article_id
                  WHERE s.last_seen >= ? AND s.first_seen >= ?) chosen
                CROSS JOIN articles a ON a.id = chosen.article_id
                JOIN feeds f ON f.id = a.feed_id
                WHERE chosen.nth <= ?
                ORDER BY a.published, a.id""",
            [ts(since), ts(began_since) if began_since else "", latest],
        )
        return [_doc(r) for r in rows]

    def stories_began(self, story_ids: Iterable[int]) -> dict[int, datetime]:
        """When each of these stories began: its earliest article."""
        rows = self._rows_in("SELECT id, first_seen FROM stories WHERE id IN ({marks})", story_ids)
        return {r["id"]: as_dt(r["first_seen"]) for r in rows}

    def save_clustering(
        self,
        *,
        placements: Sequence[StoryPlacement],
        new_story_keys: dict[int, int],
        merged: Sequence[tuple[int, int]] = (),
        stories: Sequence[StoredStory],
        df_increments: dict[str, int],
        documents: int,
        now: datetime,
    ) -> dict[int, int]:
        """Write placements and story summaries.

        A story key is a stored story id, or a negative key for a story the clusterer just
        began; ``new_story_keys`` maps each such key to the article that began it. ``merged``
        lists ``(survivor_key, absorbed_id)`` for stored stories folded into another: their
        articles move, and their id becomes an alias. Returns the mapping from new keys to ids.
        """
        ids: dict[int, int] = {}
        with self.transaction():
            for key, founder in new_story_keys.items():
                ids[key] = self._new_story(founder, now)
            for p in placements:
                target = ids.get(p.story, p.story)
                # A story begun and absorbed within this run never had an id of its own.
                placed_in = ids.get(p.placed_in, p.placed_in if p.placed_in > 0 else target)
                self.db.execute(
                    """INSERT INTO story_articles
                         (article_id, story_id, similarity, added_at, shared_terms, placed_in,
                          cosine, quiet_hours)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(article_id) DO UPDATE SET
                         story_id = excluded.story_id, similarity = excluded.similarity,
                         shared_terms = excluded.shared_terms, placed_in = excluded.placed_in,
                         cosine = excluded.cosine, quiet_hours = excluded.quiet_hours,
                         placed_by = 'cluster'""",
                    [
                        p.article,
                        target,
                        p.similarity,
                        ts(now),
                        json.dumps(p.shared_terms),
                        placed_in,
                        p.cosine,
                        p.quiet_hours,
                    ],
                )
            for survivor, absorbed in merged:
                self._fold_story(absorbed, into=ids.get(survivor, survivor))
            for story in stories:
                self._refresh_story(ids.get(story.id, story.id), story, now)
            for term, inc in df_increments.items():
                self.db.execute(
                    """INSERT INTO term_df (term, df) VALUES (?, ?)
                       ON CONFLICT(term) DO UPDATE SET df = df + excluded.df""",
                    [term, inc],
                )
            self._set_meta("documents", str(documents))
        return ids

    def _new_story(self, founder: int, now: datetime) -> int:
        # Never reuse an id: a merged story's id lives on as an alias, and SQLite would hand
        # out the highest id again once that story's row is gone.
        cursor = self.db.execute(
            """INSERT INTO stories (id, title, first_seen, last_seen, created_at, updated_at)
               SELECT 1 + MAX(COALESCE((SELECT MAX(id) FROM stories), 0),
                              COALESCE((SELECT MAX(alias_id) FROM story_aliases), 0),
                              -- the highest id pruning removed (store.retention)
                              COALESCE((SELECT CAST(value AS INTEGER) FROM meta
                                        WHERE key = 'pruned_story_id'), 0)),
                      title, published, published, ?, ? FROM articles WHERE id = ?""",
            [ts(now), ts(now), founder],
        )
        return int(cursor.lastrowid or 0)

    def _fold_story(self, absorbed: int, *, into: int) -> None:
        """Move a story's articles into another; its id becomes an alias of that one."""
        self.db.execute(
            "UPDATE story_articles SET story_id = ? WHERE story_id = ?", [into, absorbed]
        )
        self.db.execute(
            "UPDATE story_aliases SET story_id = ? WHERE story_id = ?", [into, absorbed]
        )
        self.db.execute(
            "INSERT OR REPLACE INTO story_aliases (alias_id, story_id) VALUES (?, ?)",
            [absorbed, into],
        )
        # What the user kept apart from the absorbed story stays apart from the survivor.
        for other in self._apart_from(absorbed):
            self.db.execute(
                "DELETE FROM stories_apart WHERE story_a = ? AND story_b = ?",
                [min(absorbed, other), max(absorbed, other)],
            )
            if other != into:
                self._keep_apart(into, other)
        self.db.execute("DELETE FROM stories WHERE id = ?", [absorbed])

    def _apart_from(self, story_id: int) -> list[int]:
        rows = self._rows(
            """SELECT story_b AS other FROM stories_apart WHERE story_a = :id
               UNION SELECT story_a FROM stories_apart WHERE story_b = :id""",
            {"id": story_id},
        )
        return [r["other"] for r in rows]

    def _keep_apart(self, a: int, b: int) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO stories_apart (story_a, story_b) VALUES (?, ?)",
            [min(a, b), max(a, b)],
        )

    def made_by_user(self, story_id: int) -> bool:
        """Whether the user put every article of the story there (a story a split made)."""
        row = self._one(
            """SELECT COUNT(*) AS articles,
                      SUM(placed_by = 'user' AND placed_in = story_id) AS placed
               FROM story_articles WHERE story_id = ?""",
            [story_id],
        )
        return bool(row and row["articles"] and row["articles"] == row["placed"])

    def stories_apart(self) -> list[tuple[int, int]]:
        """Every pair of stories the user split apart."""
        return [(r["story_a"], r["story_b"]) for r in self._rows("SELECT * FROM stories_apart")]

    def _refresh_story(self, story_id: int, story: StoredStory, now: datetime) -> None:
        self.db.execute(
            f"""UPDATE stories SET title = ?, terms = ?, updated_at = ?, {STORY_FIGURES}
                WHERE id = ?""",
            [story.title, json.dumps(list(story.terms)), ts(now), story_id],
        )

    # -- corrections --

    def resolve_story(self, story_id: int) -> int:
        """The id of the story ``story_id`` is now (itself, or the story it was merged into)."""
        row = self._one(
            """SELECT id FROM stories WHERE id = COALESCE(
                 (SELECT story_id FROM story_aliases WHERE alias_id = :id), :id)""",
            {"id": story_id},
        )
        if row is None:
            raise NotFoundError(f"no story with id {story_id}")
        return int(row["id"])

    def story_articles(self, story_id: int) -> list[int]:
        """The ids of a story's articles; a merged story's id leads to the survivor."""
        rows = self._rows(
            "SELECT article_id FROM story_articles WHERE story_id = ? ORDER BY article_id",
            [self.resolve_story(story_id)],
        )
        return [r["article_id"] for r in rows]

    def mark_read(self, article_ids: Sequence[int], *, read: bool) -> int:
        """Mark articles read or unread (an article is one row however many feeds carry it, so
        its copies go with it); return how many changed."""
        with self.transaction():
            return self._execute_in(
                "UPDATE articles SET read = ? WHERE id IN ({marks}) AND read != ?",
                article_ids,
                first=[int(read)],
                last=[int(read)],
            )

    def stories_of(self, article_ids: Sequence[int]) -> dict[int, int | None]:
        """The story each article is in (None when not placed yet); unknown ids are an error."""
        rows = self._rows_in(
            """SELECT a.id, sa.story_id FROM articles a
               LEFT JOIN story_articles sa ON sa.article_id = a.id
               WHERE a.id IN ({marks})""",
            article_ids,
        )
        found: dict[int, int | None] = {r["id"]: r["story_id"] for r in rows}
        missing = [str(i) for i in article_ids if i not in found]
        if missing:
            raise NotFoundError(f"no article with id {', '.join(missing)}")
        return found

    def merge_stories(self, survivor: int, absorbed: Iterable[int]) -> None:
        """The user's merge: the other stories' articles join ``survivor``; ids become aliases."""
        with self.transaction():
            for story_id in absorbed:
                # The user's latest word wins over an earlier split of these two.
                self.db.execute(
                    "DELETE FROM stories_apart WHERE story_a = ? AND story_b = ?",
                    [min(survivor, story_id), max(survivor, story_id)],
                )
                self._fold_story(story_id, into=survivor)

    def move_articles(self, article_ids: Sequence[int], *, to: int | None, now: datetime) -> int:
        """The user's move: put articles in story ``to``, or in a new story when None.

        The stories they came from are kept apart from it from now on, so clustering never
        undoes the move by merging them back; a story left empty becomes an alias of ``to``.
        Returns the story they are in now.
        """
        with self.transaction():
            origins = set(self.stories_of(article_ids).values()) - {None, to}
            target = to if to is not None else self._new_story(article_ids[0], now)
            self._execute_in(
                """INSERT INTO story_articles (article_id, story_id, similarity, added_at,
                                              shared_terms, placed_in, placed_by)
                   SELECT id, ?, NULL, ?, '[]', ?, 'user' FROM articles WHERE id IN ({marks})
                   ON CONFLICT(article_id) DO UPDATE SET
                     story_id = excluded.story_id, similarity = NULL, shared_terms = '[]',
                     cosine = NULL, quiet_hours = NULL, placed_in = excluded.placed_in,
                     placed_by = 'user'""",
                article_ids,
                first=[target, ts(now), target],
            )
            for origin in origins:
                assert origin is not None
                left = self._one("SELECT 1 FROM story_articles WHERE story_id = ?", [origin])
                if left is None:
                    self._fold_story(origin, into=target)
                else:
                    self._keep_apart(origin, target)
        return target

    def story_docs(self, story_ids: Iterable[int]) -> list[ClusterDoc]:
        """The articles of these stories as the clusterer sees them, in time order."""
        rows = self._rows_in(
            f"""SELECT {_DOC_COLUMNS}, sa.story_id
                FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                JOIN feeds f ON f.id = a.feed_id
                WHERE sa.story_id IN ({{marks}})""",
            story_ids,
        )
        return sorted((_doc(r) for r in rows), key=lambda d: (d.published, d.key))

    def refresh_stories(self, summaries: Iterable[StoredStory], now: datetime) -> None:
        """Write new headlines and terms, and recount each story's figures."""
        with self.transaction():
            for story in summaries:
                self._refresh_story(story.id, story, now)

    def mute_articles(self, terms: str | None, feeds: Sequence[str], *, rules: str) -> list[int]:
        """Bring every article's muted flag in line with the mute rules; return the stories
        whose articles changed, which need their figures and headline worked out again.

        ``terms`` is an FTS5 query that mutes what it matches; an article is muted by
        ``feeds`` (URLs) when every feed that carries it is one of them. ``rules`` names the
        rules: while it stays the same, only articles with a sighting newer than the last call
        are looked at, so a poll costs a few rows, and a change of rules looks at everything.
        """
        with self.transaction():
            current, same, through, last_item = self._muted_up_to_date(rules)
            if current:
                return []
            params: dict[str, Any] = {"through": through}
            scope = "a.id IN (SELECT article_id FROM items WHERE id > :through)" if same else "1"
            muted = []
            if terms:
                muted.append("a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH :q)")
                params["q"] = terms
            if feeds:
                muted.append(
                    """NOT EXISTS (SELECT 1 FROM items i JOIN feeds f ON f.id = i.feed_id
                                   WHERE i.article_id = a.id
                                     AND f.url NOT IN (SELECT value FROM json_each(:feeds)))"""
                )
                params["feeds"] = json.dumps(list(feeds))
            rule = " OR ".join(f"({m})" for m in muted) or "0"
            flipped = self._rows(
                f"""SELECT a.id, sa.story_id FROM articles a
                    LEFT JOIN story_articles sa ON sa.article_id = a.id
                    WHERE {scope} AND a.muted != ({rule})""",
                params,
            )
            self._execute_in(
                "UPDATE articles SET muted = 1 - muted WHERE id IN ({marks})",
                [r["id"] for r in flipped],
            )
            self._set_meta("mute_rules", rules)
            self._set_meta("muted_through", str(last_item))
        return sorted({r["story_id"] for r in flipped if r["story_id"] is not None})

    def mute_is_current(self, rules: str) -> bool:
        """Whether the muted flags follow these rules and every sighting stored."""
        return self._muted_up_to_date(rules)[0]

    def _muted_up_to_date(self, rules: str) -> tuple[bool, bool, int, int]:
        """Whether the flags are current; whether the rules are the same, and the last item
        looked at and the newest one."""
        row = self._one(
            """SELECT (SELECT COALESCE(MAX(id), 0) FROM items) AS newest,
                      (SELECT value FROM meta WHERE key = 'mute_rules') AS rules,
                      (SELECT value FROM meta WHERE key = 'muted_through') AS through"""
        )
        assert row is not None
        same = (row["rules"] or "") == rules
        through = int(row["through"] or 0)
        # Without rules nothing new is muted (the flag starts at 0): nothing to look at.
        current = same and (through >= row["newest"] or not rules)
        return current, same, through, row["newest"]


def _doc(r: dict[str, Any]) -> ClusterDoc:
    return ClusterDoc(
        key=r["id"],
        title=r["title"],
        summary=r["summary"],
        source=r["source"],
        published=as_dt(r["published"]),
        story=r["story_id"],
        muted=bool(r["muted"]),
    )


# What FTS5 puts around each match; neither can be in stored text (normalize drops controls).
_MARK, _END = "\x02", "\x03"
