"""Where each setting of a YAML file is: its key path (``polling.concurrency``, ``feeds[2].url``)
to its line, so a config error can name the line to fix."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["key_lines"]


def key_lines(path: Path) -> dict[str, int]:
    """Each key path of the file at ``path`` and its 1-based line; empty when it cannot be read."""
    try:
        with path.open(encoding="utf-8") as stream:
            root = yaml.compose(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}
    # Iterative, as a hostile file may nest deeply.
    stack: list[tuple[str, yaml.Node]] = [("", root)] if root is not None else []
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                where = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines.setdefault(where, key.start_mark.line + 1)
                stack.append((where, value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                where = f"{prefix}[{i}]"
                lines.setdefault(where, item.start_mark.line + 1)
                stack.append((where, item))
    return lines
