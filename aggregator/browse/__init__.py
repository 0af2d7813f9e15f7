"""The interactive reader, `aggregator browse`: ranked stories, a story's timeline, one article.

A Textual application over the store. It only reads the database and marks articles read or
unread: polling stays with `aggregator run` (from cron), and R reloads what that wrote. Every
call to the store is made from the app's own thread (plain handlers, no thread workers), since
the SQLite connection is not shared between threads.
"""

from __future__ import annotations

from .app import Reader, StoryFilter, browse
from .dialogs import Picker, SearchBox
from .screens import (
    MIN_SIZE,
    SEARCH_LIMIT,
    STORY_LIMIT,
    ArticleScreen,
    SearchResults,
    StoryList,
    StoryScreen,
)

__all__ = [
    "MIN_SIZE",
    "SEARCH_LIMIT",
    "STORY_LIMIT",
    "ArticleScreen",
    "Picker",
    "Reader",
    "SearchBox",
    "SearchResults",
    "StoryFilter",
    "StoryList",
    "StoryScreen",
    "browse",
]
