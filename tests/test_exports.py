"""`aggregator.__all__` is what the package exports, and every name in it resolves.

The package loads its names lazily (PEP 562: ``_HOMES`` maps each to its module), so nothing
but a test notices a name added to one list and not the others. ``export_problems`` checks a
package against its source; the last test shows it catching each kind of slip.
"""

from __future__ import annotations

import ast
import importlib
from types import ModuleType

import pytest

import aggregator

from .conftest import ROOT

SOURCE = (ROOT / "aggregator" / "__init__.py").read_text(encoding="utf-8")
# What a module's namespace holds without exporting it.
NOT_EXPORTS = {"__all__", "__getattr__", "__dir__"}


def _eager_names(tree: ast.Module) -> set[str]:
    """The public names the package defines itself: ``__version__``, constants, functions."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    dunder = {n for n in names if n.startswith("__") and n.endswith("__")}
    return {n for n in names if not n.startswith("_")} | (dunder - NOT_EXPORTS)


def _typed_names(tree: ast.Module) -> dict[str, str]:
    """What the ``if TYPE_CHECKING:`` block imports, for type checkers: name -> home module."""
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for found in node.body:
                if isinstance(found, ast.ImportFrom) and found.level == 1 and found.module:
                    typed |= {a.asname or a.name: found.module for a in found.names}
    return typed


def export_problems(package: ModuleType, source: str) -> list[str]:
    """What is wrong with ``package``'s exports (its ``__init__`` is ``source``); [] if nothing."""
    problems: list[str] = []
    declared: list[str] = list(package.__all__)
    homes: dict[str, str] = package._HOMES
    tree = ast.parse(source)
    exported = set(homes) | _eager_names(tree)
    if len(set(declared)) != len(declared):
        problems.append("__all__ names a name twice")
    problems += [f"{n}: in __all__, but not exported" for n in sorted(set(declared) - exported)]
    problems += [f"{n}: exported, but not in __all__" for n in sorted(exported - set(declared))]
    for name in declared:
        try:
            getattr(package, name)
        except AttributeError:
            problems.append(f"{name}: in __all__, but does not resolve")
    for name, home in sorted(homes.items()):
        module = importlib.import_module(f".{home}", package.__name__)
        if name not in getattr(module, "__all__", ()):
            problems.append(f"{name}: not in the __all__ of its home, aggregator.{home}")
        elif getattr(package, name, None) is not getattr(module, name):
            problems.append(f"{name}: is not aggregator.{home}.{name}")
    typed = _typed_names(tree)
    if typed != homes:
        problems.append(f"the TYPE_CHECKING imports {typed} are not _HOMES {homes}")
    return problems


def test_all_is_what_the_package_exports_and_each_name_resolves() -> None:
    assert export_problems(aggregator, SOURCE) == []


def test_the_lazy_names_include_the_main_ones_and_nothing_else_resolves() -> None:
    assert {"AggregatorError", "Config", "StoryView", "load_config", "__version__"} <= set(
        aggregator.__all__
    )
    with pytest.raises(AttributeError, match="no attribute 'Nowhere'"):
        aggregator.Nowhere  # noqa: B018


def _package(source: str) -> ModuleType:
    """A stand-in for the package, run from ``source``: its lazy names load the real modules."""
    package = ModuleType("aggregator")
    package.__path__ = aggregator.__path__
    package.__package__ = "aggregator"
    exec(compile(source, "aggregator/__init__.py", "exec"), package.__dict__)
    return package


SLIPS = {
    "left out of __all__": (
        '    "__version__",\n    "load_config",',
        '    "load_config",',
        "__version__: exported, but not in __all__",
    ),
    "in __all__ only": (
        '    "Config",\n',
        '    "Config",\n    "Nowhere",\n',
        "Nowhere: in __all__, but not exported",
    ),
    "in _HOMES only": (
        '    "Config": "config",',
        '    "Config": "config",\n    "Store": "store",',
        "Store: exported, but not in __all__",
    ),
    "the wrong home": (
        '    "Config": "config",',
        '    "Config": "models",',
        "Config: not in the __all__ of its home",
    ),
    "not for type checkers": (
        "    from .config import Config, load_config",
        "    from .config import Config",
        "the TYPE_CHECKING imports",
    ),
    "defined, not listed": (
        '__version__ = "0.1.0"',
        '__version__ = "0.1.0"\nVERSION = __version__',
        "VERSION: exported, but not in __all__",
    ),
}


@pytest.mark.parametrize(("old", "new", "problem"), SLIPS.values(), ids=SLIPS.keys())
def test_the_check_catches_each_slip(old: str, new: str, problem: str) -> None:
    assert SOURCE.count(old) == 1, old
    broken = SOURCE.replace(old, new)
    problems = export_problems(_package(broken), broken)
    assert any(p.startswith(problem) for p in problems), problems
