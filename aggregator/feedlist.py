"""Edit the ``feeds:`` list of a config file in place, for `feeds add`, `import` and `remove`.

The file is the user's: only the lines of the feed being added or removed change, so comments
and layout everywhere else stay exactly as they were. PyYAML's node positions say where each
item is; the new text is checked to load before it is written, atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .config import SAFE_LOADER, resolve_feed_location
from .errors import ConfigError
from .models import FeedConfig

__all__ = ["add_feed_to_file", "add_feeds_to_file", "remove_feed_from_file"]


def add_feed_to_file(path: Path, feed: FeedConfig) -> None:
    """Append ``feed`` to the file's feeds list (creating file or list). Error if present."""
    if not add_feeds_to_file(path, [feed])[0]:
        raise ConfigError(f"{feed.url} is already in {path}")


def add_feeds_to_file(
    path: Path, feeds: Iterable[FeedConfig], *, dry_run: bool = False
) -> tuple[list[FeedConfig], list[FeedConfig]]:
    """Append the feeds not yet listed, in one atomic write: (added, already present).

    Existing lines are never touched: new items go after the last one, in its indentation.
    A feed listed twice in ``feeds`` is added once. Nothing new, or ``dry_run``: no write.
    """
    text = _read(path)
    key, value = _feeds_node(path, text)[1:]
    items = value.value if isinstance(value, yaml.SequenceNode) else []
    base = path.resolve().parent
    listed = {_item_url(item, base) for item in items}
    added: list[FeedConfig] = []
    present: list[FeedConfig] = []
    for feed in feeds:
        (present if feed.url in listed else added).append(feed)
        listed.add(feed.url)
    if not added or dry_run:
        return added, present
    entries = [_entry(feed) for feed in added]
    lines = text.splitlines(keepends=True)
    if isinstance(value, yaml.SequenceNode) and not value.flow_style and items:
        spans = _item_spans(lines, value)
        indent = spans[-1][2]
        insert_at = spans[-1][1] + 1
        if insert_at > 0 and not lines[insert_at - 1].endswith("\n"):
            lines[insert_at - 1] += "\n"
        lines[insert_at:insert_at] = _render(entries, indent)
        _write(path, "".join(lines))
    else:
        _replace_value(path, text, key, value, [*_load(text, value), *entries])
    return added, present


def remove_feed_from_file(path: Path, feed: str) -> str:
    """Remove the feed named ``feed`` (its URL, or its title) from the file's feeds list, and
    return its URL. Error if it is not there, or if two feeds have that title."""
    text = _read(path)
    key, value = _feeds_node(path, text)[1:]
    items = value.value if isinstance(value, yaml.SequenceNode) else []
    base = path.resolve().parent
    # As given, or resolved like `feeds add` resolves it (from here) or like the config does.
    wanted = {feed, resolve_feed_location(feed, Path.cwd()), resolve_feed_location(feed, base)}
    index = next((i for i, item in enumerate(items) if _item_url(item, base) in wanted), None)
    if index is None:
        titled = [i for i, item in enumerate(items) if _same(_item_title(item), feed)]
        if len(titled) > 1:
            raise ConfigError(f"{len(titled)} feeds in {path} have the title {feed!r}: give a URL")
        index = titled[0] if titled else None
    if index is None or not isinstance(value, yaml.SequenceNode):
        raise ConfigError(f"{feed} is not in {path}, as a URL or as a title")
    url = _item_url(items[index], base) or feed
    if not value.flow_style:  # block style (None for an unindented list)
        lines = text.splitlines(keepends=True)
        start, end, _ = _item_spans(lines, value)[index]
        del lines[start : end + 1]
        _write(path, "".join(lines))
        return url
    remaining = _load(text, value)
    del remaining[index]
    _replace_value(path, text, key, value, remaining)
    return url


def _item_title(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.MappingNode):
        title = next((v.value for k, v in node.value if k.value == "title"), None)
        return title if isinstance(title, str) else None
    return None


def _same(title: str | None, name: str) -> bool:
    """A title as a user types it: case and spacing do not matter."""
    return (
        title is not None
        and " ".join(title.split()).casefold() == " ".join(name.split()).casefold()
    )


def _entry(feed: FeedConfig) -> Any:
    """A feed as a list item: the bare URL, or a mapping when it has a title or tags."""
    if not (feed.title or feed.tags):
        return feed.url
    entry: dict[str, Any] = {"url": feed.url}
    if feed.title:
        entry["title"] = feed.title
    if feed.tags:
        entry["tags"] = list(feed.tags)
    return entry


# --- positions --------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e


Feeds = tuple[yaml.MappingNode | None, yaml.ScalarNode | None, yaml.Node | None]


def _feeds_node(path: Path, text: str) -> Feeds:
    """The top-level mapping, the ``feeds`` key and its value (a list or null), where present."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: cannot edit, not valid YAML: {e}") from e
    if root is None:
        return None, None, None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "feeds":
            null = isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null")
            if not (isinstance(value, yaml.SequenceNode) or null):
                raise ConfigError(f"{path}: feeds: expected a list")
            return root, key, value
    return root, None, None


def _item_url(node: yaml.Node, base: Path) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        url = node.value
    elif isinstance(node, yaml.MappingNode):
        url = next((v.value for k, v in node.value if k.value == "url"), None)
    else:
        return None
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        return resolve_feed_location(url.strip(), base)
    except ConfigError:
        return url


def _item_spans(lines: list[str], items: yaml.SequenceNode) -> list[tuple[int, int, int]]:
    """Each block item's own lines: (first, last, column of its dash).

    An item runs from its dash to the last line indented deeper than the dash; comment and
    blank lines after it belong to whatever follows, so they stay when the item goes.
    """
    spans = []
    for node in items.value:
        first = node.start_mark.line
        # The dash is before the item on its first line, or alone on a line above ("-\n  url:").
        before = lines[first][: node.start_mark.column]
        while "-" not in before and first > 0:
            first -= 1
            before = lines[first]
        dash = before.index("-")
        last = first
        for j in range(first + 1, len(lines)):
            stripped = lines[j].strip()
            if not stripped or stripped.startswith("#"):
                continue
            if len(lines[j]) - len(lines[j].lstrip()) <= dash:
                break
            last = j
        spans.append((first, last, dash))
    return spans


def _render(feeds: list[Any], indent: int) -> list[str]:
    """Block list items at ``indent``; a feed's tags stay on one line, as people write them."""
    lines = []
    for entry in feeds:
        text = yaml.safe_dump(
            entry, default_flow_style=None, allow_unicode=True, sort_keys=False, width=4096
        )
        body = text.removesuffix("...\n").splitlines()
        lines.append(" " * indent + "- " + body[0] + "\n")
        lines += [" " * (indent + 2) + line + "\n" for line in body[1:]]
    return lines


def _load(text: str, value: yaml.Node | None) -> list[Any]:
    """The items of a flow or null feeds value, as data."""
    if value is None:
        return []
    return list(yaml.safe_load(text[value.start_mark.index : value.end_mark.index]) or [])


def _replace_value(
    path: Path,
    text: str,
    key: yaml.ScalarNode | None,
    value: yaml.Node | None,
    feeds: list[Any],
) -> None:
    """Write ``feeds:`` as a block list where it stood (or at the end when it did not)."""
    block = "".join(_render(feeds, 2)) if feeds else ""
    if key is None or value is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        new_text = f"{text}{sep}feeds:\n{block}" if feeds else f"{text}{sep}feeds: []\n"
    else:
        # From just after "feeds:" to the end of its value (a flow list, or null).
        colon = text.index(":", key.end_mark.index) + 1
        tail = text[max(value.end_mark.index, colon) :]
        if feeds:
            middle = "\n" + block
            tail = tail.removeprefix("\n")
        else:
            middle = " []"
        new_text = text[:colon] + middle + tail
    _write(path, new_text)


def _write(path: Path, text: str) -> None:
    """Check the new text loads, then write it beside the old file and rename over it."""
    try:
        # libyaml when present: checking a thousand-feed list takes 15 ms instead of 130.
        yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as e:  # a bug in the editing above, never the user's doing
        raise AssertionError(f"edited config does not load: {e}") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
