"""Incremental story clustering at scale: time, memory and quality at 10k, 30k and 100k articles.

    python benchmarks/cluster_scale.py [--sizes 10000,30000,100000] [--runs 3]
        [--peer-sizes 2000,5000,10000] [--skip-peer] [--profile] [--json figures.json]

Test data: the dev set (../shared/data/uci-news-stories-dev.csv, 3,239 headlines in 43 stories
over ~33 h) replicated: replica r is shifted by r * --shift-hours (48 by default, so replicas
do not overlap in time; a smaller value makes the stream denser) and, from replica 1 on, each
headline is perturbed (a word dropped, two words swapped, digits changed, " - Publisher"
appended, each with some probability). Every replica also carries the ~840 items of
../shared/corpus/real-feeds (read through aggregator's parse and normalize), perturbed the same
way and given random times inside the replica's hours, as distractors that belong to no story.
A story label is (replica, story); each distractor is its own story. Items are spread over
--feeds fake feeds (the publisher decides the feed).

What is measured, each in a fresh process (spawned, so its peak RSS is its own):

- store: the real path. Articles go in through ``Store.save_poll`` (as a poll stores them) in
  batches of --batch in time order, and ``stories.cluster_pending`` runs after each batch. The
  clustering is timed apart from the inserting. Reported per size: clustering seconds in total
  (wall, and CPU of the process); seconds per 1k articles since the previous size (flat means
  the total grows linearly; a single batch's cost swings with how dense the replica is at that
  hour, so this averages over whole replicas); the batch landing at that size (the median of
  the last --tail batches); B3-F1 of the stories as stored. Peak RSS is
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process (test data and scikit-learn's
  import included; the RSS before the first batch is shown as the base).
- pure: ``StoryClusterer.add`` over the same items in memory, with ``expire`` as
  ``aggregator.evaluate.evaluate`` does: what clustering costs without the store.
- peer: scikit-learn's AgglomerativeClustering (average linkage, cosine distance, precomputed
  from TF-IDF of the same texts) on the first N items, with a distance threshold chosen on the
  dev set (the best B3-F1 of a sweep). It needs the full N x N distance matrix, so its memory
  grows with N squared; the table shows where it stops fitting the 1.5 GB budget. It reads
  each headline twice (aggregator's title weight) and the summary's first 400 characters. It
  knows nothing of time, so past one replica (~4k items) it joins a story with its copy two
  days later: its F1 at 5k and 10k measures that, and the dev-set F1 is the like-for-like one.

The figures are medians over --runs runs. --profile runs cProfile over the store path's last
batch (the batch that lands at the largest size) in one extra run and prints the top items;
--json writes every run's figures (per-batch times included) to a file.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import multiprocessing
import os
import pstats
import random
import re
import resource
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from story_quality import distractors  # noqa: E402

from aggregator.cluster import StoryClusterer, reach  # noqa: E402
from aggregator.config import ClusteringConfig, Config  # noqa: E402
from aggregator.dedupe import IngestPlan  # noqa: E402
from aggregator.evaluate import LabelledItem, bcubed, read_labels  # noqa: E402
from aggregator.models import (  # noqa: E402
    Article,
    ClusterDoc,
    FeedConfig,
    FeedStatus,
    FeedUpdate,
)
from aggregator.normalize import content_hash  # noqa: E402
from aggregator.store import Store, open_store  # noqa: E402
from aggregator.stories import cluster_pending  # noqa: E402

ROOT = HERE.parent
BUDGET_SECONDS = 20.0  # 100k articles clustered through the store
BUDGET_BATCH = 1.0  # one batch of 1k into a store of 100k
BUDGET_RSS_MB = 1536.0  # 1.5 GB peak RSS
PEER_THRESHOLDS = (0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99)
PEER_HALF_LIFE_H = 12.0  # the anchor's time decay


# --- test data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One article of the synthetic stream, with its true story."""

    key: str  # unique: replica and position
    title: str
    summary: str
    publisher: str
    published: datetime
    label: Hashable  # (replica, story)


def perturb(title: str, rng: random.Random, publisher: str) -> str:
    """A headline as another outlet might write it: small edits, each with some probability."""
    words = title.split()
    if len(words) > 4 and rng.random() < 0.3:
        del words[rng.randrange(len(words))]
    if len(words) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    text = " ".join(words)
    if rng.random() < 0.3:
        text = re.sub(r"\d", lambda _: str(rng.randrange(10)), text)
    if rng.random() < 0.3:
        text = f"{text} - {publisher}"
    return text


def retimed(dev: Sequence[LabelledItem], rng: random.Random) -> list[datetime]:
    """Each item's time as real coverage would bring it, the way ../shared/tools/retime.py does
    by default: a story keeps its first article's time, and each later article comes a
    log-normal delay after it (median 3 h, sigma 1, at most 72 h)."""
    first: dict[str, datetime] = {}
    for item in sorted(dev, key=lambda i: i.published):
        first.setdefault(item.story, item.published)
    times = []
    for item in dev:
        start = first[item.story]
        if item.published == start:
            times.append(start)
        else:
            delay = min(72.0, rng.lognormvariate(math.log(3.0), 1.0))
            times.append(start + timedelta(hours=delay))
    return times


def build_stream(
    shared: Path, size: int, shift: timedelta, seed: int, timing: str = "retimed"
) -> list[Item]:
    """The first ``size`` items of the replicated stream, in time order."""
    dev = read_labels(shared / "data" / "uci-news-stories-dev.csv")
    extra = distractors(shared / "corpus" / "real-feeds")
    start = min(i.published for i in dev)
    replicas = math.ceil(size / (len(dev) + len(extra))) + 1
    items: list[Item] = []
    for r in range(replicas):
        rng = random.Random(f"{seed}-{r}")
        offset = shift * r
        times = retimed(dev, rng) if timing == "retimed" else [d.published for d in dev]
        span = (max(times) - start).total_seconds()
        for n, (d, when) in enumerate(zip(dev, times, strict=True)):
            title = perturb(d.title, rng, d.source) if r else d.title
            items.append(Item(f"{r}-{n}", title, d.summary, d.source, when + offset, (r, d.story)))
        for n, (title, summary) in enumerate(extra):
            when = start + offset + timedelta(seconds=rng.uniform(0, span))
            publisher = f"blog {rng.randrange(40)}"
            title = perturb(title, rng, publisher) if r else title
            items.append(Item(f"{r}-d{n}", title, summary, publisher, when, (r, f"d{n}")))
    items.sort(key=lambda i: (i.published, i.key))
    return items[:size]


def checkpoints(sizes: Sequence[int], batch: int) -> list[int]:
    """The sizes, rounded up to whole batches."""
    return sorted({math.ceil(s / batch) * batch for s in sizes})


# --- measuring helpers ------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def f1(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    return bcubed(truth, predicted).f1


def tail_median(values: Sequence[float], end: int, tail: int) -> float:
    """The median of the ``tail`` values before index ``end`` (the batches landing at a size)."""
    return statistics.median(values[max(0, end - tail) : end])


# --- the store path ---------------------------------------------------------------------------


def feed_configs(count: int) -> list[FeedConfig]:
    return [
        FeedConfig(url=f"https://outlet{n:03d}.example/feed", title=f"Outlet {n:03d}")
        for n in range(count)
    ]


def feed_of(item: Item, count: int) -> int:
    return zlib.crc32(item.publisher.encode("utf-8")) % count


def to_article(item: Item, feed_url: str, seen: datetime) -> Article:
    link = f"{feed_url.removesuffix('/feed')}/{item.key}"
    return Article(
        feed_url=feed_url,
        guid=link,
        url=link,
        canonical_url=link,
        title=item.title,
        summary=item.summary,
        published=item.published,
        first_seen=seen,
        content_hash=content_hash(item.title, item.summary),
    )


def insert_batch(
    store: Store, batch: Sequence[Item], feeds: Sequence[tuple[int, str]], now: datetime
) -> list[tuple[int, Item]]:
    """Store one batch as a poll of the feeds it touches does: one save_poll per feed."""
    by_feed: dict[int, list[Item]] = {}
    for item in batch:
        by_feed.setdefault(feed_of(item, len(feeds)), []).append(item)
    stored: list[tuple[int, Item]] = []
    with store.transaction():
        for index, items in by_feed.items():
            feed_id, url = feeds[index]
            plan = IngestPlan(
                new=tuple(to_article(i, url, now) for i in items), duplicates=(), seen=0
            )
            update = FeedUpdate(
                status=FeedStatus.OK, fetched_at=now, next_due=now + timedelta(minutes=30)
            )
            ids = store.save_poll(feed_id, plan, update)
            stored.extend(zip(ids, items, strict=True))
    return stored


def stored_f1(store: Store, labels: dict[int, Hashable]) -> float:
    """B3-F1 of the stories in the store (read straight from story_articles: scoring only)."""
    rows = store.db.execute("SELECT article_id, story_id FROM story_articles").fetchall()
    story = dict(rows)
    keys = list(labels)
    return f1([labels[k] for k in keys], [story[k] for k in keys])


def run_store(
    items: Sequence[Item], sizes: Sequence[int], batch: int, feeds: int, tail: int, profile: bool
) -> dict[str, Any]:
    """Insert in batches and cluster after each; figures at each size."""
    config = Config(database=Path(tempfile.mkdtemp(prefix="cluster-scale-")) / "agg.db")
    store = open_store(config.database)
    first = items[0].published
    store.sync_feeds(feed_configs(feeds), first)
    feed_list = [(f.id, f.url) for f in store.feeds()]
    labels: dict[int, Hashable] = {}
    insert_s: list[float] = []
    cluster_s: list[float] = []
    cluster_cpu: list[float] = []
    at: dict[int, dict[str, float]] = {}
    profiled = ""
    base_rss = current_rss_mb()
    for end in range(batch, len(items) + 1, batch):
        chunk = items[end - batch : end]
        now = chunk[-1].published
        t0 = time.perf_counter()
        labels.update((k, i.label) for k, i in insert_batch(store, chunk, feed_list, now))
        t1, c1 = time.perf_counter(), time.process_time()
        if profile and end == len(items):
            profiler = cProfile.Profile()
            profiler.runcall(cluster_pending, store, config, now=now)
            profiled = profile_text(profiler)
        else:
            cluster_pending(store, config, now=now)
        insert_s.append(t1 - t0)
        cluster_s.append(time.perf_counter() - t1)
        cluster_cpu.append(time.process_time() - c1)
        if end in sizes:
            n = len(cluster_s)
            at[end] = {
                "cluster_s": sum(cluster_s),
                "cluster_cpu_s": sum(cluster_cpu),
                "batch_s": tail_median(cluster_s, n, tail),
                "batch_cpu_s": tail_median(cluster_cpu, n, tail),
                "insert_s": sum(insert_s),
                "b3_f1": stored_f1(store, labels),
                "rss_mb": peak_rss_mb(),
            }
    store.close()
    return {
        "at": at,
        "batches_s": cluster_s,
        "batches_cpu_s": cluster_cpu,
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak_rss_mb(),
        "profile": profiled,
    }


def profile_text(profiler: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


# --- the pure clusterer -----------------------------------------------------------------------


def run_pure(items: Sequence[Item], sizes: Sequence[int], batch: int, tail: int) -> dict[str, Any]:
    """StoryClusterer.add over the items in memory, expiring as evaluate() does."""
    config = ClusteringConfig()
    clusterer = StoryClusterer(config)
    predicted: list[int] = []
    per_batch: list[float] = []
    at: dict[int, dict[str, float]] = {}
    base_rss = current_rss_mb()
    elapsed = 0.0
    for end in range(batch, len(items) + 1, batch):
        t0 = time.perf_counter()
        for n in range(end - batch, end):
            item = items[n]
            doc = ClusterDoc(n + 1, item.title, item.summary, item.publisher, item.published)
            predicted.append(clusterer.add(doc).story)
            clusterer.expire(item.published - reach(config))
        per_batch.append(time.perf_counter() - t0)
        elapsed += per_batch[-1]
        if end in sizes:
            stories = [clusterer.resolve(p) for p in predicted]
            at[end] = {
                "cluster_s": elapsed,
                "batch_s": tail_median(per_batch, len(per_batch), tail),
                "b3_f1": f1([i.label for i in items[:end]], stories),
            }
    return {"at": at, "base_rss_mb": base_rss, "peak_rss_mb": peak_rss_mb()}


# --- the peer: scikit-learn's agglomerative clustering ----------------------------------------


def peer_text(title: str, summary: str, config: ClusteringConfig) -> str:
    """What aggregator's clusterer reads, with the title counted twice as its weight says."""
    return " ".join([title] * round(config.title_weight) + [summary[: config.summary_chars]])


def peer_labels(texts: Sequence[str], times: Sequence[datetime], threshold: float) -> list[int]:
    """The offline anchor: average-link over character n-gram cosines decayed by time."""
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True
    ).fit_transform(texts)
    hours = np.array([t.timestamp() / 3600 for t in times])
    decay = 0.5 ** (np.abs(hours[:, None] - hours[None, :]) / PEER_HALF_LIFE_H)
    distances = 1.0 - (vectors @ vectors.T).toarray() * decay
    del decay
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    return [int(x) for x in model.fit_predict(distances)]


def choose_threshold(shared: Path) -> dict[str, Any]:
    """The anchor's distance threshold with the best B3-F1 on the re-timed dev set (a)."""
    dev = read_labels(shared / "data" / "uci-news-stories-dev-retimed-a.csv")
    config = ClusteringConfig()
    texts = [peer_text(d.title, d.summary, config) for d in dev]
    times = [d.published for d in dev]
    truth = [d.story for d in dev]
    scores = {t: f1(truth, peer_labels(texts, times, t)) for t in PEER_THRESHOLDS}
    best = max(scores, key=lambda t: scores[t])
    return {"threshold": best, "dev_f1": scores[best], "sweep": scores}


def run_peer(items: Sequence[Item], threshold: float) -> dict[str, Any]:
    """The peer on all of ``items`` at once: seconds, peak RSS and B3-F1."""
    import sklearn.cluster  # noqa: F401  (imported before the clock starts, as for aggregator)

    config = ClusteringConfig()
    texts = [peer_text(i.title, i.summary, config) for i in items]
    base_rss = current_rss_mb()
    t0 = time.perf_counter()
    labels = peer_labels(texts, [i.published for i in items], threshold)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "b3_f1": f1([i.label for i in items], labels),
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- one measurement per process --------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    kind: str  # "store", "pure", "peer" or "threshold"
    shared: Path
    size: int
    sizes: tuple[int, ...] = ()
    batch: int = 1000
    feeds: int = 300
    tail: int = 5
    shift_hours: float = 48.0
    seed: int = 1
    threshold: float = 0.0
    profile: bool = False
    timing: str = "retimed"
    code: str = ""  # another checkout to run aggregator from (the before of a comparison)


def run_job(job: Job) -> dict[str, Any]:
    """In a fresh process: build the data, then measure one thing."""
    if job.kind == "threshold":
        return choose_threshold(job.shared)
    if job.code:
        use_code(Path(job.code))
    items = build_stream(
        job.shared, job.size, timedelta(hours=job.shift_hours), job.seed, job.timing
    )
    from aggregator.cluster import prepare

    prepare()  # scikit-learn's import is not clustering
    if job.kind == "store":
        return run_store(items, job.sizes, job.batch, job.feeds, job.tail, job.profile)
    if job.kind == "pure":
        return run_pure(items, job.sizes, job.batch, job.tail)
    return run_peer(items, job.threshold)


def use_code(checkout: Path) -> None:
    """Run the store and pure paths on the aggregator of another checkout (this process only).

    The names those paths use are bound again to that checkout's; before the story-making
    module existed, ``cluster_pending`` lived in the pipeline.
    """
    import importlib

    for name in [m for m in sys.modules if m == "aggregator" or m.startswith("aggregator.")]:
        del sys.modules[name]
    sys.path.insert(0, str(checkout.resolve()))
    cluster = importlib.import_module("aggregator.cluster")
    config = importlib.import_module("aggregator.config")
    try:
        making = importlib.import_module("aggregator.stories")
    except ImportError:
        making = importlib.import_module("aggregator.pipeline")
    store = importlib.import_module("aggregator.store")
    models = importlib.import_module("aggregator.models")
    globals().update(
        StoryClusterer=cluster.StoryClusterer,
        reach=cluster.reach,
        ClusteringConfig=config.ClusteringConfig,
        Config=config.Config,
        cluster_pending=making.cluster_pending,
        open_store=store.open_store,
        IngestPlan=importlib.import_module("aggregator.dedupe").IngestPlan,
        content_hash=importlib.import_module("aggregator.normalize").content_hash,
        Article=models.Article,
        ClusterDoc=models.ClusterDoc,
        FeedConfig=models.FeedConfig,
        FeedStatus=models.FeedStatus,
        FeedUpdate=models.FeedUpdate,
    )


def in_fresh_process(job: Job) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(run_job, (job,))


def medians(runs: Sequence[dict[str, Any]], size: int, key: str) -> float:
    return statistics.median(r["at"][size][key] for r in runs)


def marginal(runs: Sequence[dict[str, Any]], size: int, before: int) -> float:
    """Clustering seconds per 1k articles between two sizes: flat means linear growth."""
    return statistics.median(
        (r["at"][size]["cluster_s"] - (r["at"][before]["cluster_s"] if before else 0.0))
        / ((size - before) / 1000)
        for r in runs
    )


# --- reporting --------------------------------------------------------------------------------


def verdict(value: float, budget: float) -> str:
    return "ok" if value <= budget else "MISSED"


def report_scale(
    store_runs: Sequence[dict[str, Any]], pure_runs: Sequence[dict[str, Any]], sizes: list[int]
) -> None:
    print(
        "\nstore = save_poll + cluster_pending per 1k batch; pure = StoryClusterer.add in memory;"
        "\ns/1k = clustering seconds per 1k articles since the previous size; batch = median of"
        "\nthe last batches before the size (wall, and CPU of the process)"
    )
    print(
        f"{'articles':>9} | {'store: total s':>14} {'CPU s':>6} {'s/1k':>6} {'batch':>6} "
        f"{'CPU':>6} {'insert s':>8} {'B3-F1':>6} {'RSS MB':>7} | "
        f"{'pure: s':>7} {'s/1k':>6} {'B3-F1':>6}"
    )
    before = 0
    for size in sizes:
        print(
            f"{size:>9,} | {medians(store_runs, size, 'cluster_s'):>14.2f} "
            f"{medians(store_runs, size, 'cluster_cpu_s'):>6.2f} "
            f"{marginal(store_runs, size, before):>6.3f} "
            f"{medians(store_runs, size, 'batch_s'):>6.3f} "
            f"{medians(store_runs, size, 'batch_cpu_s'):>6.3f} "
            f"{medians(store_runs, size, 'insert_s'):>8.2f} "
            f"{medians(store_runs, size, 'b3_f1'):>6.3f} "
            f"{medians(store_runs, size, 'rss_mb'):>7.0f} | "
            f"{medians(pure_runs, size, 'cluster_s'):>7.2f} "
            f"{marginal(pure_runs, size, before):>6.3f} "
            f"{medians(pure_runs, size, 'b3_f1'):>6.3f}"
        )
        before = size
    top = sizes[-1]
    total = medians(store_runs, top, "cluster_s")
    last = medians(store_runs, top, "batch_s")
    rss = statistics.median(r["peak_rss_mb"] for r in store_runs)
    base = statistics.median(r["base_rss_mb"] for r in store_runs)
    print(
        f"\nat {top:,}: clustering through the store {total:.1f} s in total "
        f"(budget {BUDGET_SECONDS:.0f} s: {verdict(total, BUDGET_SECONDS)}); "
        f"a 1k batch {last:.2f} s (budget {BUDGET_BATCH:.0f} s: {verdict(last, BUDGET_BATCH)}); "
        f"peak RSS {rss:.0f} MB, {base:.0f} MB before the first batch "
        f"(budget {BUDGET_RSS_MB:.0f} MB: {verdict(rss, BUDGET_RSS_MB)})"
    )
    pure_total = medians(pure_runs, top, "cluster_s")
    pure_rss = statistics.median(r["peak_rss_mb"] for r in pure_runs)
    print(
        f"the pure clusterer takes {pure_total:.1f} s of the store path's {total:.1f} s "
        f"({pure_total / total:.0%}); its peak RSS {pure_rss:.0f} MB"
    )
    if len(sizes) > 1:
        growth = marginal(store_runs, top, sizes[-2]) / marginal(store_runs, sizes[0], 0)
        print(f"growth: s/1k in the last interval is {growth:.2f}x the first's (1.0 = linear)")


def report_peer(
    threshold: dict[str, Any],
    peer: dict[int, list[dict[str, Any]]],
    store_runs: Sequence[dict[str, Any]],
    pure_runs: Sequence[dict[str, Any]],
) -> None:
    sweep = ", ".join(f"{t:.2f}: {s:.3f}" for t, s in threshold["sweep"].items())
    print(
        f"\npeer: the offline anchor, AgglomerativeClustering(average) over character 3-5-gram "
        f"cosines x 0.5^(hours apart / {PEER_HALF_LIFE_H:g}), distance_threshold "
        f"{threshold['threshold']:.2f} chosen on the re-timed dev set a (B3-F1 "
        f"{threshold['dev_f1']:.3f}; sweep {sweep})"
    )
    print(
        f"{'articles':>9} | {'peer s':>7} {'RSS MB':>7} {'B3-F1':>6} | "
        f"{'store s':>7} {'B3-F1':>6} | {'pure s':>7} {'B3-F1':>6}"
    )
    for size, runs in sorted(peer.items()):
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        print(
            f"{size:>9,} | {statistics.median(r['seconds'] for r in runs):>7.2f} "
            f"{rss:>7.0f} {statistics.median(r['b3_f1'] for r in runs):>6.3f} | "
            f"{medians(store_runs, size, 'cluster_s'):>7.2f} "
            f"{medians(store_runs, size, 'b3_f1'):>6.3f} | "
            f"{medians(pure_runs, size, 'cluster_s'):>7.2f} "
            f"{medians(pure_runs, size, 'b3_f1'):>6.3f}"
            + ("   (over the 1.5 GB budget)" if rss > BUDGET_RSS_MB else "")
        )


# --- main -------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int_list, default=[10_000, 30_000, 100_000])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (medians)")
    parser.add_argument("--peer-sizes", type=int_list, default=[2_000, 5_000, 10_000])
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--peer-threshold", type=float, help="skip the sweep on the dev set")
    parser.add_argument("--batch", type=int, default=1000, help="articles per insert+cluster")
    parser.add_argument("--feeds", type=int, default=300, help="fake feeds (publishers)")
    parser.add_argument("--tail", type=int, default=5, help="batches in a per-batch median")
    parser.add_argument(
        "--timing",
        choices=("retimed", "burst"),
        default="retimed",
        help="retimed: each replica re-timed like retime.py; burst: the dev set's own timing",
    )
    parser.add_argument(
        "--shift-hours", type=float, help="between replicas (default 120 retimed, 48 burst)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (a worktree of the commit before): time its clusterer too",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the last batch")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    return parser.parse_args()


def measure_scale(
    job: Job, runs: int, against: Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The store path and the pure clusterer, ``runs`` times each, alternating; with
    ``against``, the same for that checkout, run after each of ours."""
    store_runs, pure_runs, before_store, before_pure = [], [], [], []
    for run in range(runs):
        store_runs.append(in_fresh_process(job))
        pure_runs.append(in_fresh_process(replace(job, kind="pure")))
        line = (
            f"run {run + 1}: store {store_runs[-1]['at'][job.size]['cluster_s']:.1f} s, "
            f"pure {pure_runs[-1]['at'][job.size]['cluster_s']:.1f} s"
        )
        if against is not None:
            before = replace(job, code=str(against))
            before_store.append(in_fresh_process(before))
            before_pure.append(in_fresh_process(replace(before, kind="pure")))
            line += (
                f"; before: store {before_store[-1]['at'][job.size]['cluster_s']:.1f} s, "
                f"pure {before_pure[-1]['at'][job.size]['cluster_s']:.1f} s"
            )
        print(line, flush=True)
    return store_runs, pure_runs, before_store, before_pure


def report_against(
    against: Path,
    runs: Sequence[Sequence[dict[str, Any]]],
    sizes: list[int],
) -> None:
    store_runs, pure_runs, before_store, before_pure = runs
    print(f"\nagainst {against} on the same stream, in the same run (ratio = ours / before):")
    print(
        f"{'articles':>9} | {'store s':>7} {'before':>7} {'ratio':>6} {'CPU ratio':>9} | "
        f"{'pure s':>7} {'before':>7} {'ratio':>6} | {'B3-F1':>6} {'before':>6}"
    )
    for size in sizes:
        ours = medians(store_runs, size, "cluster_s")
        theirs = medians(before_store, size, "cluster_s")
        cpu = medians(store_runs, size, "cluster_cpu_s") / medians(
            before_store, size, "cluster_cpu_s"
        )
        pure = medians(pure_runs, size, "cluster_s")
        pure_before = medians(before_pure, size, "cluster_s")
        print(
            f"{size:>9,} | {ours:>7.2f} {theirs:>7.2f} {ours / theirs:>6.2f} {cpu:>9.2f} | "
            f"{pure:>7.2f} {pure_before:>7.2f} {pure / pure_before:>6.2f} | "
            f"{medians(store_runs, size, 'b3_f1'):>6.3f} "
            f"{medians(before_store, size, 'b3_f1'):>6.3f}"
        )


def measure_peer(
    job: Job, sizes: Sequence[int], runs: int, threshold: float | None
) -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]]]:
    """The peer's threshold (from the dev set unless given), then the peer at each size."""
    if threshold is None:
        chosen = in_fresh_process(replace(job, kind="threshold"))
    else:
        chosen = {"threshold": threshold, "dev_f1": float("nan"), "sweep": {}}
    peer = {
        size: [
            in_fresh_process(replace(job, kind="peer", size=size, threshold=chosen["threshold"]))
            for _ in range(runs)
        ]
        for size in sizes
    }
    return chosen, peer


def main() -> None:
    args = parse_args()
    peer_sizes = [] if args.skip_peer else checkpoints(args.peer_sizes, args.batch)
    sizes = checkpoints(args.sizes, args.batch)
    every = sorted({*sizes, *peer_sizes})
    shift = args.shift_hours or (120.0 if args.timing == "retimed" else 48.0)
    job = Job(
        kind="store",
        shared=args.shared,
        size=every[-1],
        sizes=tuple(every),
        batch=args.batch,
        feeds=args.feeds,
        tail=args.tail,
        shift_hours=shift,
        seed=args.seed,
        timing=args.timing,
    )
    print(
        f"{args.runs} run(s); batches of {args.batch:,}; {args.feeds} feeds; {args.timing} "
        f"timing, replicas {shift:g} h apart; medians; RSS = ru_maxrss of each run's own process",
        flush=True,
    )
    measured = measure_scale(job, args.runs, args.against)
    store_runs, pure_runs = measured[0], measured[1]
    report_scale(store_runs, pure_runs, sizes)
    figures: dict[str, Any] = {"store": store_runs, "pure": pure_runs}
    if args.against is not None:
        report_against(args.against, measured, sizes)
        figures.update(before_store=measured[2], before_pure=measured[3])
    if peer_sizes:
        chosen, peer = measure_peer(job, peer_sizes, args.runs, args.peer_threshold)
        report_peer(chosen, peer, store_runs, pure_runs)
        figures.update(threshold=chosen, peer=peer)
    if args.profile:
        profiled = in_fresh_process(replace(job, profile=True))
        print(f"\ncProfile of the batch that lands at {every[-1]:,}:\n{profiled['profile']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
