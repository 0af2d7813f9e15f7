"""aggregator: follow hundreds of feeds as a short list of deduplicated, clustered stories."""

from __future__ import annotations

from .config import Config, load_config
from .errors import AggregatorError
from .models import Article, ArticleView, FeedOutcome, PollReport, StoryView

__version__ = "0.1.0"

__all__ = [
    "AggregatorError",
    "Article",
    "ArticleView",
    "Config",
    "FeedOutcome",
    "PollReport",
    "StoryView",
    "__version__",
    "load_config",
]
