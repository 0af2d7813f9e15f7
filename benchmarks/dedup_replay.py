"""Dedup on the dev replay: are syndicated copies stored once, and what does finding them cost?

The farm (benchmarks/farm.py) serves the dev story data as 1,241 feeds with ``--syndicate``
of the items republished in other outlets' feeds (tracking parameters, AMP links or a new URL
on the republisher's host; "UPDATE 1-" and " - Reuters" around the headline; now and then a
word dropped or a number rewritten) and writes the ground truth, copy guid -> original guid.

For each setting of ``dedupe.near_duplicates`` (on, off; just the default while aggregator has
no such key) the real ``aggregator --config ... --db ... poll --all`` runs once on a fresh
database, and the database is read directly:

- recall: the share of the copies whose items row points at the same article as their
  original's items row;
- precision: every items row that shares its article with an items row of another feed is a
  folded pair, with the article's first items row; a pair is right when the ground truth says
  the two are one item (a copy and its original, or two copies of it) or when their headlines
  are the same after trimming white space (identical headlines from two outlets count as one
  wire article). Wrong folds are counted by whether the data's headlines behind the pair (a
  copy's being its original's) have the same words but for case and punctuation, and whether a
  copy is in the pair; missed copies by whether they got an article of their own or joined
  another. Up to 20 of each are listed. With ``--syndicate 0`` every fold is a wrong one unless
  the headlines are the same: what near-duplicate detection does to the data alone.

Cost: CPU seconds of parse + normalize + dedupe + store of the farm's bodies, in-process through
``aggregator.workers.read_document`` and ``aggregator.pipeline.store_document`` with the
config the poll used, stored the way benchmarks/poll_farm.py does (a transaction per 20 feeds,
a savepoint per feed, fresh database). On and off alternate; medians of ``--runs``.

    python benchmarks/dedup_replay.py --runs 5 --syndicate 0.10 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import farm  # noqa: E402
from poll_farm import SUMMARY  # noqa: E402

SHOW = 20  # wrong folds and misses listed


@dataclass
class Quality:
    copies: int = 0
    folded: int = 0
    pairs: int = 0
    by_truth: int = 0  # folded pairs the ground truth calls one item
    by_headline: int = 0  # the others with identical headlines
    kinds: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wrong_kinds: Counter[str] = field(default_factory=Counter)
    miss_kinds: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.folded / max(self.copies, 1)

    @property
    def wrong_folds(self) -> int:
        return self.pairs - self.by_truth - self.by_headline

    @property
    def precision(self) -> float:
        return (self.by_truth + self.by_headline) / self.pairs if self.pairs else 1.0


def start_farm(
    workdir: Path, latency: float, syndicate: float, seed: int, edits: float
) -> tuple[subprocess.Popen[str], Path, Path]:
    config, truth = workdir / "farm.yaml", workdir / "farm.truth.json"
    proc, _ = farm.spawn(
        *("--latency", str(latency), "--config", str(config), "--truth", str(truth)),
        *("--syndicate", str(syndicate), "--seed", str(seed), "--edits", str(edits)),
    )
    return proc, config, truth


def has_switch(workdir: Path) -> bool:
    """Whether aggregator's config knows ``dedupe.near_duplicates``."""
    from aggregator.config import load_config
    from aggregator.errors import ConfigError

    probe = workdir / "probe.yaml"
    probe.write_text("dedupe:\n  near_duplicates: false\n")
    try:
        config = load_config(probe, environ={})
    except ConfigError:
        return False
    return getattr(getattr(config, "dedupe", None), "near_duplicates", None) is False


def aggregator_command() -> list[str]:
    script = Path(sys.executable).with_name("aggregator")
    return [str(script)] if script.exists() else [sys.executable, str(HERE.parent / "cli.py")]


def run_poll(config: Path, db: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*aggregator_command(), "--config", str(config), "--db", str(db), "poll", "--all"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"aggregator poll failed ({done.returncode}):\n{done.stderr[-2000:]}")
    match = SUMMARY.search(done.stderr)
    return seconds, match.group(0) if match else done.stderr.strip()[-200:]


def evaluate(db: Path, truth: dict[str, str], copies: list[farm.Copy]) -> Quality:
    """Recall and precision of the folds in ``db`` against the ground truth."""
    about: dict[str, tuple[str, str]] = {}  # guid -> (headline, host)
    for row in farm.read_rows():
        about[f"uci-{row['ID']}"] = (row["TITLE"], row["HOSTNAME"])
    for c in copies:
        about[c.guid] = (c.title, c.host)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        hosts = {
            feed_id: urlsplit(url).path.split("/")[1]
            for feed_id, url in con.execute("SELECT id, url FROM feeds")
        }
        items = con.execute(
            "SELECT id, feed_id, article_id, item_key FROM items ORDER BY id"
        ).fetchall()
    con.close()
    article_of: dict[str, int] = {}
    stored_in: dict[str, str] = {}  # guid -> host of the feed it was stored from
    by_article: defaultdict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for item_id, feed_id, article_id, key in items:
        guid = key.removeprefix("guid:")
        article_of[guid] = article_id
        stored_in[guid] = hosts[feed_id]
        by_article[article_id].append((item_id, feed_id, guid))

    def show(guid: str) -> str:
        title, host = about.get(guid, ("?", "?"))
        return f"{title.strip()!r} ({stored_in.get(guid, host)})"

    q = Quality(copies=len(copies))
    for c in copies:
        mine, theirs = article_of.get(c.guid), article_of.get(c.original)
        ok = mine is not None and mine == theirs
        q.folded += ok
        for name, kind in (("url", c.url_kind), ("title", c.title_kind), ("edit", c.edit)):
            q.kinds[f"{name}:{kind}"]["folded" if ok else "missed"] += 1
        if ok:
            continue
        cause = (
            "not stored"
            if mine is None or theirs is None
            else "own article"
            if len(by_article[mine]) == 1
            else "folded into another"
        )
        q.miss_kinds[cause] += 1
        if len(q.missed) < SHOW:
            where = cause
            if mine is not None and cause == "folded into another":
                other = next(g for _, _, g in by_article[mine] if g != c.guid)
                where = f"with {show(other)}"
            kinds = f"{c.url_kind}/{c.title_kind}/{c.edit}"
            q.missed.append(f"{show(c.original)}\n      copy {show(c.guid)} [{kinds}; {where}]")

    def root(guid: str) -> str:
        return truth.get(guid, guid)

    for rows in by_article.values():
        if len({feed_id for _, feed_id, _ in rows}) < 2:
            continue
        _, _, first = rows[0]
        for _, _, other in rows[1:]:
            q.pairs += 1
            if root(first) == root(other):
                q.by_truth += 1
            elif about.get(first, ("",))[0].strip() == about.get(other, (" ",))[0].strip():
                q.by_headline += 1
            else:
                kind = _wrong_kind(first, other, truth, about)
                q.wrong_kinds[kind] += 1
                if q.wrong_kinds[kind] <= SHOW:
                    q.wrong.append(f"[{kind}] {show(first)}\n      + {show(other)}")
    return q


def _wrong_kind(a: str, b: str, truth: dict[str, str], about: dict[str, tuple[str, str]]) -> str:
    """What a wrong fold joined: the data's headlines behind the two (a copy's is its original's)
    written with the same words but for case and punctuation, or not; and whether a copy was in
    the pair (a copy can be the article's first row, when it was stored before its original)."""
    words = [re.findall(r"\w+", about.get(truth.get(g, g), ("",))[0].casefold()) for g in (a, b)]
    kind = "same words" if words[0] == words[1] else "other words"
    return kind + (", through a copy" if a in truth or b in truth else "")


def ingest_cpu(
    bodies: list[tuple[str, bytes]], configs: dict[str, Path], runs: int
) -> dict[str, dict[str, list[float]]]:
    """CPU seconds of parse + normalize + dedupe + store of ``bodies``, per config, alternating.

    Returns {label: {"all": [...], "store": [...]}}, "store" being store_document alone.
    """
    from aggregator.config import load_config
    from aggregator.models import FeedConfig, FetchResult
    from aggregator.pipeline import store_document
    from aggregator.store import open_store
    from aggregator.workers import read_document

    accepts_dedupe = "dedupe" in inspect.signature(store_document).parameters
    headers = {"content-type": "application/rss+xml"}
    loaded = {label: load_config(path, environ={}) for label, path in configs.items()}
    out: dict[str, dict[str, list[float]]] = {k: {"all": [], "store": []} for k in configs}
    for run in range(runs):
        order = list(loaded.items())
        if run % 2:
            order.reverse()
        for label, config in order:
            extra = {"dedupe": config.dedupe} if accepts_dedupe else {}
            with tempfile.TemporaryDirectory() as tmp:
                store = open_store(Path(tmp) / "cpu.db")
                now = datetime.now(UTC)
                store.sync_feeds([FeedConfig(url=url) for url, _ in bodies], now)
                states = store.feeds()
                rng = random.Random(1)
                pairs = list(zip(states, bodies, strict=True))
                storing = 0.0
                started = time.process_time()
                for i in range(0, len(pairs), 20):
                    with store.transaction():
                        for state, (_, body) in pairs[i : i + 20]:
                            result = FetchResult(
                                state.url, state.url, 200, body, headers, None, None
                            )
                            document = read_document(state.url, body, headers, now)
                            before = time.process_time()
                            with store.transaction():
                                store_document(
                                    store,
                                    state,
                                    result,
                                    document,
                                    body_hash=hashlib.sha256(body).hexdigest(),
                                    polling=config.polling,
                                    now=now,
                                    rng=rng,
                                    **extra,
                                )
                            storing += time.process_time() - before
                out[label]["all"].append(time.process_time() - started)
                out[label]["store"].append(storing)
                store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="of the CPU measurement")
    ap.add_argument("--latency", type=float, default=0.0, help="the farm's, seconds a request")
    ap.add_argument("--syndicate", type=float, default=0.10, help="share of items copied")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--edits", type=float, default=0.0, help="share of copies with a small edit")
    ap.add_argument("--keep", action="store_true", help="keep the databases (paths printed)")
    ap.add_argument("--skip-cpu", action="store_true")
    args = ap.parse_args()
    if not farm.DATA.is_file():
        sys.exit(f"no story data at {farm.DATA}: this benchmark replays ../shared")
    workdir = Path(tempfile.mkdtemp(prefix="dedup_replay-"))
    try:
        switch = has_switch(workdir)
        modes = {"on": "true", "off": "false"} if switch else {"default": None}
        proc, farm_config, truth_path = start_farm(
            workdir, args.latency, args.syndicate, args.seed, args.edits
        )
        try:
            configs: dict[str, Path] = {}
            for label, value in modes.items():
                text = farm_config.read_text()
                if value is not None:
                    text += f"dedupe:\n  near_duplicates: {value}\n"
                configs[label] = workdir / f"{label}.yaml"
                configs[label].write_text(text)
            # No copies (--syndicate 0): the farm writes no truth; every fold is then a mistake
            # unless the two headlines are the same.
            truth: dict[str, str] = (
                json.loads(truth_path.read_text()) if truth_path.exists() else {}
            )
            _, copies = farm.build_farm(farm.DATA, args.syndicate, args.seed, args.edits)
            if {c.guid: c.original for c in copies} != truth:
                sys.exit("the farm's ground truth differs from build_farm's copies")
            polls, quality = {}, {}
            for label, config in configs.items():
                db = workdir / f"{label}.db"
                polls[label] = run_poll(config, db)
                quality[label] = evaluate(db, truth, copies)
        finally:
            proc.kill()
            proc.wait()
        cpu = None
        if not args.skip_cpu:
            feeds = farm.build_feeds(farm.DATA, args.syndicate, args.seed, args.edits)
            bodies = [(f"http://{f.host}/feed.xml", f.body) for f in feeds]
            cpu = ingest_cpu(bodies, configs, args.runs)
        report(args, switch, copies, polls, quality, cpu)
        if args.keep:
            print(f"\ndatabases and configs kept in {workdir}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def report(
    args: argparse.Namespace,
    switch: bool,
    copies: list[farm.Copy],
    polls: dict[str, tuple[float, str]],
    quality: dict[str, Quality],
    cpu: dict[str, dict[str, list[float]]] | None,
) -> None:
    originals = len({c.original for c in copies})
    print(
        f"farm: 1,241 feeds, {len(copies):,} copies of {originals:,} items"
        f" (--syndicate {args.syndicate} --seed {args.seed}), latency {args.latency * 1000:.0f} ms"
    )
    if not switch:
        print("dedupe.near_duplicates: not a config key yet; one run with aggregator's default")
    labels = list(quality)
    head = "near_duplicates" if switch else ""
    print(f"\n{head:<34}" + "".join(f"{label:>22}" for label in labels))

    def row(name: str, cells: list[str]) -> None:
        print(f"{name:<34}" + "".join(f"{c:>22}" for c in cells))

    row("poll --all, wall s (1 run)", [f"{polls[k][0]:.2f}" for k in labels])
    row(
        "recall",
        [
            f"{q.recall:.3f} ({q.folded}/{q.copies})" if q.copies else "n/a"
            for q in quality.values()
        ],
    )
    row("precision", [f"{q.precision:.4f} ({q.pairs} pairs)" for q in quality.values()])
    row("  pairs true by ground truth", [str(q.by_truth) for q in quality.values()])
    row("  pairs true by same headline", [str(q.by_headline) for q in quality.values()])
    row("  wrong folds", [str(q.wrong_folds) for q in quality.values()])
    if cpu is not None:
        row(
            f"ingest CPU s, median of {args.runs}",
            [f"{statistics.median(cpu[k]['all']):.3f}" for k in labels],
        )
        row(
            "  of which store_document",
            [f"{statistics.median(cpu[k]['store']):.3f}" for k in labels],
        )
        for k in labels:
            print(f"  runs {k}: {[round(x, 3) for x in cpu[k]['all']]}")
        if switch:
            on, off = (statistics.median(cpu[k]["all"]) for k in ("on", "off"))
            s_on, s_off = (statistics.median(cpu[k]["store"]) for k in ("on", "off"))
            print(
                f"  CPU ratio on/off: {on / off:.3f}x ingest (target <= 1.10),"
                f" {s_on / s_off:.3f}x store_document alone"
            )
    for k in labels:
        print(f"\n[{k}] poll: {polls[k][1]}")
        q = quality[k]
        kinds = sorted(q.kinds.items())
        print(
            "  copies folded/all by kind: "
            + ", ".join(f"{name} {c['folded']}/{c['folded'] + c['missed']}" for name, c in kinds)
        )
        split = ", ".join(f"{n} {kind}" for kind, n in q.wrong_kinds.most_common())
        print(f"  wrong folds ({q.wrong_folds}{': ' + split if split else ''}):")
        for w in _round_robin(q.wrong)[:SHOW]:
            print(f"    - {w}")
        split = ", ".join(f"{n} {kind}" for kind, n in q.miss_kinds.most_common())
        print(f"  missed copies ({q.copies - q.folded}{': ' + split if split else ''}):")
        for m in q.missed:
            print(f"    - {m}")


def _round_robin(lines: list[str]) -> list[str]:
    """Lines "[kind] ..." reordered to take each kind in turn, so every kind is shown."""
    groups: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        groups[line.split("]", 1)[0]].append(line)
    out = []
    for i in range(max((len(g) for g in groups.values()), default=0)):
        out += [g[i] for g in groups.values() if i < len(g)]
    return out


if __name__ == "__main__":
    main()
