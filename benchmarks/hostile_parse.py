"""Parse time of hostile documents: feedparser alone against aggregator's parse_feed.

The documents: a billion-laughs entity bomb (declarations on one line), an external entity
(XXE), author fields of 8 to 64 KB that make feedparser's e-mail regex quadratic, and a
15 MB feed of tiny items. parse_feed defuses entity declarations and cuts author-like fields
before feedparser sees them (aggregator/parse.py, ``harden``).

    python benchmarks/hostile_parse.py [--runs 5]

Prints the median of the runs for each document, and the ratio feedparser / parse_feed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import feedparser

from aggregator.parse import parse_feed


def billion_laughs() -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [{"".join(levels)}]><rss version="2.0"><channel>'
        "<title>&lol9;</title><item><title>&lol9;</title><guid>1</guid></item></channel></rss>"
    ).encode()


def external_entity() -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title>'
        b"<guid>1</guid></item></channel></rss>"
    )


def author(size: int) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>x</title>'
        f"<author>{'a' * size}</author><guid>1</guid></item></channel></rss>"
    ).encode()


def many_items(size: int) -> bytes:
    parts, total, i = [], 0, 0
    while total < size:
        part = f"<item><title>t{i}</title><guid>g{i}</guid></item>"
        parts.append(part)
        total += len(part)
        i += 1
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


def median_time(function: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    documents = {
        "billion laughs": billion_laughs(),
        "external entity (XXE)": external_entity(),
        **{f"author of {k} KB": author(k * 1024) for k in (8, 16, 32, 64)},
        "15 MB of tiny items": many_items(15 * 1024 * 1024),
    }
    print(f"median of {args.runs} runs, seconds")
    print(f"{'document':<24} {'feedparser':>11} {'parse_feed':>11} {'ratio':>7}")
    for name, body in documents.items():
        runs = 1 if len(body) > 1_000_000 else args.runs
        raw = median_time(lambda b=body: feedparser.parse(io.BytesIO(b)), runs)
        ours = median_time(lambda b=body: parse_feed("https://bench.example/", b), runs)
        print(f"{name:<24} {raw:>11.4f} {ours:>11.4f} {raw / ours:>6.0f}x")


if __name__ == "__main__":
    main()
