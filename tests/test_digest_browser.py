"""The HTML digest in a real browser at a phone's width: nothing overflows 375 CSS px.

Headless Chromium (``--headless``, the "new" headless mode; Debian's Chromium 150 here) will
not make a window narrower than 500 px: ``--window-size=375,2000`` still gives the page an
innerWidth of 500, and no flag changes that (``--headless=new``, ``--headless=old``,
``--screen-info``, ``--force-device-scale-factor`` all tried). So the measuring run loads a
small wrapper page whose ``<iframe>`` is 375 px wide: inside it the digest has a real 375 px
layout viewport (innerWidth 375, asserted below). The copy of the digest in the frame carries a
test-only measuring script that posts its findings to the wrapper, which writes them into a
``<pre id="measure">`` for ``--dump-dom`` to print. The product HTML itself has no script.

``--screenshot`` is different: it lays the page out at the ``--window-size`` width itself (a
CSS ``max-width`` media query matches at 375), so the screenshot is of the product HTML,
unwrapped, at 375 px. It is written to tests/artifacts/digest-375.png for a person to look at
(the copy in git shows the digest with summaries and its compact "more stories" list).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.models import ArticleView, Digest, DigestEntry, StoryView, SummarySentence
from aggregator.render import render_digest, story_links

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "digest-375.png"

PHONE = 375  # CSS px, the width of a small phone
LINKS = 3
NOW = datetime(2025, 3, 14, 7, 30, tzinfo=UTC)

# Found by the measuring script: the page's width, its links and text, and every element that
# reaches past the right edge of the viewport.
MEASURE = """<script>
addEventListener("load", () => {
  const limit = window.innerWidth + 1;
  const over = [];
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > limit) {
      over.push({tag: el.tagName.toLowerCase(), right: right,
                 text: (el.textContent || "").slice(0, 60)});
    }
  }
  const found = {
    innerWidth: window.innerWidth,
    clientWidth: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    hrefs: Array.from(document.querySelectorAll("a[href]"), (a) => a.getAttribute("href")),
    overflowing: over,
    text: document.body.innerText,
  };
  parent.postMessage(JSON.stringify(found), "*");
});
</script>
"""

WRAPPER = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>measure</title></head>
<body style="margin:0">
<pre id="measure"></pre>
<iframe src="digest-measured.html" style="display:block;border:0;width:{width}px;height:4000px">
</iframe>
<script>
addEventListener("message", (event) => {{
  document.getElementById("measure").textContent = event.data;
}});
</script>
</body>
</html>
"""


def chromium() -> str:
    """The Chromium binary; skips without one, but fails on CI, which must run this test."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    found = found or shutil.which("google-chrome")
    if found:
        return found
    message = "Chromium is not installed (Debian: apt-get install chromium); CI installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def article(id: int, story_id: int, title: str, feed: str, url: str, hours: int) -> ArticleView:
    when = NOW - timedelta(hours=hours)
    return ArticleView(
        id=id,
        title=title,
        url=url,
        feed=feed,
        published=when,
        first_seen=when,
        story_id=story_id,
    )


def story(
    id: int,
    title: str,
    terms: tuple[str, ...],
    *articles: ArticleView,
    summary: tuple[SummarySentence, ...] = (),
) -> StoryView:
    return StoryView(
        summary=summary,
        id=id,
        title=title,
        size=len(articles),
        sources=tuple(dict.fromkeys(a.feed for a in articles)),
        first_seen=min(a.first_seen for a in articles),
        last_seen=max(a.first_seen for a in articles),
        terms=terms,
        status="growing",
        articles=articles,
    )


# Made up, and made to be hard to lay out in 375 px.
LONG_WORD = ("Quarkmillefeuillesupraconductivitatsweltrekordversuchsanordnung" * 2)[:120]
LONG_URL = (
    "https://archive.very-long-regional-outlet-name.example/2025/03/14/"
    + "-".join(f"section{n:02d}" for n in range(40))
)[:300]
OUTLET_A = "The Extraordinarily Long-Named Northern Valleys Evening Chronicle and Advertiser"
OUTLET_B = "Southbank Independent Broadcasting Cooperative International News Service"
OUTLET_C = "Weekly Lighthouse Keepers' Gazette (Coastal and Islands Edition)"

STORIES = (
    story(
        1,
        LONG_WORD,
        ("superconductivity", "laboratory", "record", "magnet", "cryogenics", "helium"),
        article(1, 1, LONG_WORD, OUTLET_A, "https://chronicle.example/science/magnet", 5),
        article(2, 1, "Record magnet test in valley laboratory", OUTLET_B, LONG_URL, 4),
        summary=(
            SummarySentence(
                f"Researchers held the {LONG_WORD} field for nine minutes, a record.", OUTLET_B, 2
            ),
            SummarySentence(
                "The valley laboratory cooled its magnet with liquid helium for a week.",
                OUTLET_A,
                1,
            ),
        ),
    ),
    story(
        2,
        "Lighthouse keepers vote to keep the foghorn after a long and noisy public consultation",
        tuple(
            f"{word}{n}"
            for n, word in enumerate(
                ("foghorn", "lighthouse", "consultation", "harbourmaster", "decibels", "ferry") * 2
            )
        ),
        article(3, 2, "Foghorn stays", OUTLET_C, "https://gazette.example/foghorn", 30),
        article(4, 2, "Keepers back the horn", OUTLET_A, "https://chronicle.example/horn", 20),
        article(5, 2, "Residents split on the foghorn", OUTLET_B, "https://coop.example/fh", 10),
        summary=(
            SummarySentence(
                "Keepers voted 41 to 3 to keep the foghorn, ending a year of public consultation.",
                OUTLET_C,
                3,
            ),
        ),
    ),
    story(
        3,
        "Allotment society announces its annual marrow competition will go ahead as planned",
        ("allotment", "marrow", "competition"),
        article(6, 3, "Marrow contest confirmed", OUTLET_C, "https://gazette.example/marrow", 2),
    ),
)

# Past digest.limit: the compact list, one line each.
MORE = tuple(
    story(
        10 + n,
        title,
        (),
        article(20 + 2 * n, 10 + n, title, OUTLET_A, url, 3),
        article(21 + 2 * n, 10 + n, title, OUTLET_B, url + "/b", 3),
    )
    for n, (title, url) in enumerate(
        [
            (f"{LONG_WORD} again in the news", LONG_URL + "/more"),
            ("Ferry timetable changes for the winter", "https://coop.example/ferry"),
        ]
    )
)
SUMMARY = "Keepers voted 41 to 3 to keep the foghorn, ending a year of public consultation."

DIGEST = Digest(
    generated_at=NOW,
    since=NOW - timedelta(days=1),
    entries=(
        DigestEntry(STORIES[0]),
        DigestEntry(STORIES[1], earlier_sources=1),  # 3 sources now: grown by 2
        DigestEntry(STORIES[2]),
    ),
    failing_feeds=(
        (
            OUTLET_B,
            f"HTTP 503 Service Unavailable from {LONG_URL} "
            + "the upstream proxy kept timing out while negotiating TLS " * 3,
        ),
    ),
    more=tuple(DigestEntry(s) for s in MORE),
)
GROWN = "+2 sources since your last digest"
FOOTER = "Feeds failing for more than a day:"


def measure(browser: str, tmp_path: Path, page: str) -> dict[str, Any]:
    """Load ``page`` in a 375 px frame and return what the measuring script found."""
    assert "<script" not in page.lower()
    assert page.count("</body>") == 1
    (tmp_path / "digest-measured.html").write_text(
        page.replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    wrapper = tmp_path / "wrapper.html"
    wrapper.write_text(WRAPPER.format(width=PHONE), encoding="utf-8")
    done = headless(
        browser,
        tmp_path / "profile",
        f"--window-size={PHONE},2000",  # made 500 px wide all the same: see the docstring
        "--virtual-time-budget=2000",
        "--dump-dom",
        wrapper.as_uri(),
    )
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found and found.group(1), f"no measurements in the dumped DOM:\n{done.stdout[:2000]}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.fixture(scope="module")
def page() -> str:
    return render_digest(DIGEST, "html", links=LINKS)


def test_digest_fits_a_phone(page: str, tmp_path: Path) -> None:
    browser = chromium()
    found = measure(browser, tmp_path, page)

    assert found["innerWidth"] == PHONE, "the frame did not give a 375 px viewport"
    expected = [link.url for s in DIGEST.stories for link in story_links(s, LINKS)]
    expected += [story_links(s, 1)[0].url for s in MORE]
    assert LONG_URL in expected
    missing = [url for url in expected if url not in found["hrefs"]]
    assert not missing, f"links missing from the page: {missing}"

    assert found["scrollWidth"] <= PHONE, f"the page is {found['scrollWidth']} px wide"
    assert not found["overflowing"], json.dumps(found["overflowing"], indent=1)

    text = " ".join(found["text"].split())
    assert GROWN in text
    assert FOOTER in text
    assert f"{SUMMARY} ({OUTLET_C})" in text
    assert (
        "2 more stories:" in text and "Ferry timetable changes for the winter (2 sources)" in text
    )
    assert "timing out while negotiating TLS" in text


def test_digest_screenshot(page: str, tmp_path: Path) -> None:
    browser = chromium()
    product = tmp_path / "digest.html"
    product.write_text(page, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    headless(
        browser,
        tmp_path / "profile",
        f"--window-size={PHONE},2400",
        f"--screenshot={SCREENSHOT}",
        product.as_uri(),
    )
    data = SCREENSHOT.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000
    width = int.from_bytes(data[16:20], "big")  # the IHDR chunk: width, then height
    assert width == PHONE
