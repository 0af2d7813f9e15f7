"""aggregator: follow hundreds of feeds as a short list of deduplicated, clustered stories.

The names below are loaded when first used (PEP 562), so that importing one light module,
as `aggregator --help` does, does not load the config, YAML and the models as well.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config, load_config
    from .errors import AggregatorError
    from .models import Article, ArticleView, FeedOutcome, PollReport, StoryView

__version__ = "0.1.0"

_HOMES = {
    "AggregatorError": "errors",
    "Article": "models",
    "ArticleView": "models",
    "Config": "config",
    "FeedOutcome": "models",
    "PollReport": "models",
    "StoryView": "models",
    "load_config": "config",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
