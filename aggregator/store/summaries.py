"""Stories' summaries: what they are chosen from, and where they are kept."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from ..models import SummarySentence, SummarySource
from .base import FEED_NAME, StoreBase, as_dt

__all__ = ["SummaryStore", "read_summary"]


class SummaryStore(StoreBase):
    """The text a summary is chosen from, and the summary chosen (``stories.summary``)."""

    def summary_sources(
        self, story_ids: Iterable[int], *, latest: int
    ) -> dict[int, list[SummarySource]]:
        """Each story's latest ``latest`` articles that are not muted and have a summary, in
        time order."""
        ids = list(dict.fromkeys(story_ids))
        found: dict[int, list[SummarySource]] = defaultdict(list)
        rows = self._rows_in(
            f"""SELECT * FROM (
                  SELECT sa.story_id, a.id, a.title, a.summary, a.published,
                         {FEED_NAME} AS feed, ROW_NUMBER() OVER (
                           PARTITION BY sa.story_id ORDER BY a.published DESC, a.id DESC) AS nth
                  FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                  JOIN feeds f ON f.id = a.feed_id
                  WHERE sa.story_id IN ({{marks}}) AND a.muted = 0 AND a.summary != '')
                WHERE nth <= {int(latest)}
                ORDER BY published, id""",
            ids,
        )
        for r in rows:
            published = as_dt(r["published"])
            found[r["story_id"]].append(
                SummarySource(r["id"], r["feed"], r["title"], r["summary"], published)
            )
        return {story_id: found.get(story_id, []) for story_id in ids}

    def save_summaries(self, summaries: Mapping[int, Sequence[SummarySentence]]) -> None:
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE stories SET summary = ? WHERE id = ?",
                [
                    (json.dumps([s.to_json() for s in summary], ensure_ascii=False), story_id)
                    for story_id, summary in summaries.items()
                ],
            )


def read_summary(stored: str | None) -> tuple[SummarySentence, ...]:
    """A story's summary as ``stories.summary`` keeps it."""
    return tuple(
        SummarySentence(s["text"], s["feed"], s["article_id"]) for s in json.loads(stored or "[]")
    )
