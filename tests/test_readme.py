"""The README's commands stay true."""

from __future__ import annotations

import re

import click

from cli import cli

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
SURVIVAL = (ROOT / "docs" / "survival.md").read_text(encoding="utf-8")
HOW = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_two_commands_come_first_and_ci_runs_the_same_tests() -> None:
    install_run, install_test = blocks("sh")[:2]
    assert "pip install -e ." in install_run
    assert "aggregator --config examples/offline.yaml run" in install_run
    test_command = install_test.strip().split("&&")[-1].strip()
    assert test_command == "python -m pytest"
    ci_lines = [line.strip() for line in CI.splitlines() if not line.startswith("#")]
    assert test_command in ci_lines
    assert "pip install --quiet -e '.[test]'" in CI and "pip install -e '.[test]'" in install_test


def test_every_command_in_the_table_exists() -> None:
    table = README.split("## Commands", 1)[1].split("### JSON", 1)[0]
    named = re.findall(r"^\| `([a-z]+(?: [a-z]+)?)", table, flags=re.M)
    assert len(named) >= 10
    for name in named:
        group: click.Command = cli
        for part in name.split():
            assert isinstance(group, click.Group)
            assert part in group.commands, f"README names `aggregator {name}`, the CLI has none"
            group = group.commands[part]


def test_the_config_reference_names_the_real_keys() -> None:
    from dataclasses import fields

    from aggregator.config import PollingConfig

    for field in fields(PollingConfig):
        assert f"`polling.{field.name}`" in README, field.name


def test_every_test_the_survival_table_names_exists() -> None:
    section = SURVIVAL.split("# What aggregator survives", 1)[1].split("\n# ", 1)[0]
    named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", section)
    assert len(named) >= 40
    rows = [line for line in section.splitlines() if re.match(r"\| (\d+|–) \|", line)]
    assert [r.split("|")[1].strip() for r in rows if r.split("|")[1].strip() != "–"] == [
        str(n) for n in range(1, 25)
    ]
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path}::{name}"


def test_the_module_map_names_every_module_and_only_those() -> None:
    # The map moved from the README to docs/how-it-works.md (issue 18: the README is for users).
    section = HOW.split("## The modules", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+(?:\.py|/))`", row.split("|")[1])}
    package = ROOT / "aggregator"
    present = {p.name for p in package.glob("*.py") if not p.name.startswith("__")}
    present |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert named == present


def test_the_readme_keeps_a_users_order_and_links_what_moved() -> None:
    """What a user needs, in the order issue 18 gives; the rest is in docs/, linked."""
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    assert headings == [
        "Two commands",
        "A session",
        "Your own setup",
        "Commands",
        "The reader",
        "Configuration",
        "Exit codes",
        "Troubleshooting",
        "More",
    ]
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{doc.name})" in README, f"the README does not link docs/{doc.name}"
    setup = README.split("## Your own setup", 1)[1].split("\n## ", 1)[0]
    assert setup.index("aggregator init") < setup.index("feeds add") < setup.index("```crontab")
    assert "Planned next" not in README and "see the README, Cron" not in README
