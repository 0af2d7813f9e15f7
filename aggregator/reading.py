"""What a reader does with stories and articles: mark them read or unread, open one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .errors import NotFoundError
from .listing import get_story
from .render import safe_url
from .store import Store

__all__ = ["link_to_open", "mark", "mark_opened", "save"]


def mark(store: Store, ids: Sequence[int], *, articles: bool, read: bool) -> int:
    """Mark stories (all their articles, and so their copies in other feeds) or articles read
    or unread; return how many articles changed. Unknown ids are an error, and change nothing.
    """
    return store.mark_read(_chosen(store, ids, articles=articles), read=read)


def save(store: Store, ids: Sequence[int], *, articles: bool, saved: bool, now: datetime) -> int:
    """Save stories (every article they hold now) or articles, which pruning never removes; or
    unsave them. Returns how many articles changed; unknown ids are an error, and change
    nothing."""
    return store.mark_saved(_chosen(store, ids, articles=articles), saved=saved, now=now)


def _chosen(store: Store, ids: Sequence[int], *, articles: bool) -> list[int]:
    """The articles that ids name: articles' own, or every article of these stories."""
    if articles:
        store.stories_of(ids)  # raises NotFoundError for an unknown id
        return list(dict.fromkeys(ids))
    return list(dict.fromkeys(a for story in ids for a in store.story_articles(story)))


def link_to_open(store: Store, id: int, *, article: bool) -> tuple[int, str]:
    """The article to open and its link, for an article or for a story (its first article
    with a web link). Only http(s) links: a feed's link may be anything (javascript:, file:).

    Nothing is marked: once the link is open, ``mark_opened`` marks that article read (the
    reader has seen it); a link that could not be opened leaves it unread.
    """
    if article:
        found = [a for a in store.article_views([id]) if safe_url(a.url)]
    else:
        found = [a for a in get_story(store, id).articles if safe_url(a.url)]
    if not found:
        what = "article" if article else "story"
        raise NotFoundError(f"{what} {id} has no web link to open")
    return found[0].id, str(found[0].url)


def mark_opened(store: Store, article_id: int) -> None:
    """The article whose link was opened is read."""
    store.mark_read([article_id], read=True)
