"""A config's errors, gathered to be reported all at once, each after the file and line of the
key it is about (or the environment variable that set it)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import yaml

from .errors import ConfigError

__all__ = ["Problems", "key_lines"]


class Problems:
    """Every error in a config, gathered so that one run of a command reports them all."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextlib.contextmanager
    def gather(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as e:
            self.messages.extend(str(e).splitlines())

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.messages.append(message)

    def report(self, path: Path | None, from_env: Mapping[str, str], *, top_keys: Set[str]) -> str:
        """Each problem on a line of its own, after the file and line of its key (or the name
        of the environment variable that set it, from ``from_env``: key path to variable)."""
        lines = key_lines(path) if path is not None else {}
        out = []
        for message in dict.fromkeys(self.messages):
            where = _key_path(message)
            variable = from_env.get(where.split("[")[0]) if where else None
            if variable:
                out.append(f"{variable}: {message}")
            elif where is not None and path is not None and (line := _line_of(where, lines)):
                out.append(f"{path}:{line}: {message}")
            elif where is not None and path is not None and _top(where) in top_keys:
                out.append(f"{path}: {message}")
            else:
                out.append(message)
        return "\n".join(out)


_KEY_PATH = re.compile(r"^([A-Za-z_]\w*(?:\.\w+|\[\d+\])*):")


def _key_path(message: str) -> str | None:
    match = _KEY_PATH.match(message)
    return match.group(1) if match else None


def _top(where: str) -> str:
    return where.split(".")[0].split("[")[0]


def _line_of(where: str, lines: Mapping[str, int]) -> int | None:
    """The line of ``where`` or of the nearest key above it (``feeds[2].url``, ``feeds[2]``)."""
    while where:
        if where in lines:
            return lines[where]
        cut = max(where.rfind("."), where.rfind("["))
        where = where[:cut] if cut > 0 else ""
    return None


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
