"""Turn stories, articles and feeds into text, markdown or HTML. Pure: returns strings."""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .models import (
    ArticleView,
    DeliveryOutcome,
    Digest,
    DigestEntry,
    FeedHealth,
    FeedView,
    PruneReport,
    RunReport,
    StoryView,
)

if TYPE_CHECKING:
    import jinja2

    from .evaluate import EvalReport
    from .retention import DatabaseStats

__all__ = [
    "article_ref",
    "plural",
    "render_articles",
    "render_digest",
    "render_eval",
    "render_feeds",
    "render_prune",
    "render_run",
    "render_stats",
    "render_stories",
    "render_story",
    "sanitize_html",
    "size_text",
    "span",
    "when",
]

WIDTH = 72


@dataclass(frozen=True)
class Link:
    title: str
    url: str
    feed: str


def safe_url(url: str | None) -> str | None:
    """Only web links leave aggregator: never javascript:, data:, file: or the like."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def story_links(story: StoryView, limit: int) -> list[Link]:
    """Up to ``limit`` links, earliest first, one per outlet."""
    links: list[Link] = []
    outlets: set[str] = set()
    for article in sorted(story.articles, key=lambda a: (a.published, a.id)):
        url = safe_url(article.url)
        if url is None or article.feed in outlets:
            continue
        outlets.add(article.feed)
        links.append(Link(article.title, url, article.feed))
        if len(links) == limit:
            break
    return links


def when(value: datetime) -> str:
    """ "2026-11-24 20:39 UTC": the one way aggregator shows a time to a person.

    Always in UTC, and said so beside the time, so a line copied out of a table or a digest
    still tells its zone; to the minute, with the year, as in the digests mailed and kept.
    A naive time is taken to be UTC already (the store keeps UTC).
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, noun: str) -> str:
    """ "1,340 feeds", "2 stories", "1 source": a count, with thousands separators, and its noun.

    The noun is given in the singular; the plural adds "s", or makes a final "y" after a
    consonant "ies" (story, stories; day, days). Zero takes the plural: "0 articles".
    """
    consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
    many = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count:,} {noun if count == 1 else many}"


def span(length: timedelta) -> str:
    """ "12 min", "3 h 5 min", "2 days": a length of time as a person says it, to the minute
    (rounded up: "the next in 1 min" rather than "in 0 min")."""
    minutes = max(0, math.ceil(length.total_seconds() / 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return plural(days, "day") + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def render_run(report: RunReport, now: datetime) -> str:
    """The one line `run` says (without --quiet): what it polled, and when the next digest is.

    "1,340 feeds, none due; the next in 12 min; next digest 2026-12-06 07:00 Europe/Paris
    (in 8 h 5 min)". What a due digest did is said by the deliveries themselves.
    """
    if report.polled_nothing:
        line = f"{plural(report.feeds, 'feed')}, none due"
        if report.next_feed is not None:
            line += f"; the next in {span(report.next_feed - now)}"
    else:
        line = report.poll.summary()
    if report.next_digest is not None:
        at = report.next_digest
        zone = getattr(at.tzinfo, "key", None) or at.tzname() or ""
        when_due = f"{at:%Y-%m-%d %H:%M} {zone}".rstrip()
        if report.digest_due:
            line += f"; the next digest {when_due} (in {span(at - now)})"
        else:
            line += f"; no digest due, the next {when_due} (in {span(at - now)})"
    for delivery in report.deliveries:
        if delivery.outcome == DeliveryOutcome.NOTHING_NEW:
            if delivery.recipient == "print":
                line += ". Nothing new since the last digest"
            else:
                line += f". Nothing new for {delivery.recipient}: no mail sent"
    return line


def _sources(story: StoryView, most: int = 6) -> str:
    names = list(story.sources)
    shown = ", ".join(names[:most]) + (
        f" and {len(names) - most} more" if len(names) > most else ""
    )
    return f"{plural(len(names), 'source')}: {shown}" if names else "no sources"


def _heading(digest: Digest) -> tuple[str, str]:
    n = len(digest.shown)
    title = f"aggregator digest: {plural(n, 'story')}"
    grown = sum(1 for entry in digest.shown if entry.grown)
    if grown:
        new = f"{n - grown} new, " if n > grown else ""
        title += f" ({new}{grown} grown)"
    span = f"since {when(digest.since)}" if digest.since else "all time"
    return title, f"{when(digest.generated_at)}, {span}"


def _growth(entry: DigestEntry) -> str | None:
    """ "+2 sources since your last digest" for a story that has grown, else None."""
    if not entry.grown:
        return None
    return f"+{plural(entry.added_sources, 'source')} since your last digest"


def _more_heading(digest: Digest) -> str:
    return f"{plural(len(digest.more), 'more story')}:"


def _compact(entry: DigestEntry) -> tuple[str, Link | None]:
    """A story of the compact list: its headline and sources, and a link."""
    story = entry.story
    first = story_links(story, 1)
    return f"{story.title} ({plural(len(story.sources), 'source')})", first[0] if first else None


# --- digests ----------------------------------------------------------------------------------


def render_digest(digest: Digest, fmt: str, *, links: int = 3) -> str:
    if fmt == "text":
        return _digest_text(digest, links)
    if fmt == "markdown":
        return _digest_markdown(digest, links)
    if fmt == "html":
        return _digest_html(digest, links)
    raise ValueError(f"unknown format {fmt!r}")  # the CLI and config offer only DIGEST_FORMATS


def _one_line(text: str, width: int = 80) -> str:
    """``text`` on one line of ``width`` columns at most, ending in an ellipsis when cut
    (`feeds list --json` keeps the whole)."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _wrap(text: str, indent: str = "", hang: str = "") -> list[str]:
    """Wrap at 72 columns; ``hang`` indents the lines after the first a little more."""
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + hang,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _digest_text(digest: Digest, links: int) -> str:
    title, subtitle = _heading(digest)
    lines = [title, subtitle, ""]
    if not digest.shown:
        lines.append("Nothing new.")
    for number, entry in enumerate(digest.entries, start=1):
        story = entry.story
        lines += _wrap(f"{number}. {story.title}", hang="   ")
        growth = _growth(entry)
        if growth:
            lines += _wrap(growth, "   ")
        lines += _wrap(_sources(story), "   ")
        for sentence in story.summary:
            lines += _wrap(f"“{sentence.text}” ({sentence.feed})", "   ", hang=" ")
        if story.terms:
            lines += _wrap("Terms: " + ", ".join(story.terms), "   ")
        for link in story_links(story, links):
            lines += _wrap(f"- {link.title} ({link.feed})", "   ", hang="  ")
            lines.append(f"     {link.url}")  # never wrapped: a broken URL is a dead link
        lines.append("")
    if digest.more:
        lines.append(_more_heading(digest))
        for entry in digest.more:
            text, first = _compact(entry)
            lines += _wrap(f"- {text}", hang="  ")
            if first is not None:
                lines.append(f"  {first.url}")
        lines.append("")
    if digest.failing_feeds:
        lines.append("Feeds failing for more than a day:")
        for name, error in digest.failing_feeds:
            lines += _wrap(f"- {name}: {error}", "  ")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Escape what markdown would read as markup."""
    for ch in "\\`*_{}[]()<>#|!":
        text = text.replace(ch, "\\" + ch)
    return text


def _md_url(url: str) -> str:
    """Percent-encode what could end a link target or start markup (<, >, spaces, quotes)."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def _digest_markdown(digest: Digest, links: int) -> str:
    title, subtitle = _heading(digest)
    lines = [f"# {_md(title)}", "", f"_{_md(subtitle)}_", ""]
    if not digest.shown:
        lines += ["Nothing new.", ""]
    for entry in digest.entries:
        story = entry.story
        lines += [f"## {_md(story.title)}", ""]
        growth = _growth(entry)
        if growth:
            lines.append(f"**{_md(growth)}**  ")
        lines.append(f"{_md(_sources(story))}  ")
        if story.terms:
            lines.append("Terms: " + ", ".join(f"`{t}`" for t in story.terms))
        lines.append("")
        for sentence in story.summary:
            lines += [f"> {_md(sentence.text)} _({_md(sentence.feed)})_", ">"]
        if story.summary:
            lines[-1] = ""
        for link in story_links(story, links):
            lines.append(f"- [{_md(link.title)}](<{_md_url(link.url)}>) ({_md(link.feed)})")
        lines.append("")
    if digest.more:
        lines += [f"## {_md(_more_heading(digest))}", ""]
        for entry in digest.more:
            text, first = _compact(entry)
            if first is None:
                lines.append(f"- {_md(text)}")
            else:
                story = entry.story
                sources = plural(len(story.sources), "source")
                lines.append(f"- [{_md(story.title)}](<{_md_url(first.url)}>) ({sources})")
        lines.append("")
    if digest.failing_feeds:
        lines += ["---", "", "Feeds failing for more than a day:", ""]
        lines += [f"- {_md(name)}: {_md(error)}" for name, error in digest.failing_feeds]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@cache
def _templates() -> jinja2.Environment:
    import jinja2  # here: only the HTML digest needs it, and it costs every command 20 ms

    return jinja2.Environment(
        loader=jinja2.PackageLoader("aggregator", "templates"),
        autoescape=True,  # feed text is data, never markup
        trim_blocks=True,
        lstrip_blocks=True,
    )


# What the HTML digest may contain once sanitised: the template's own tags, inline styles with
# these properties, and http(s) links. No scripts, forms, event handlers or other schemes.
_HTML_TAGS = {"div", "h1", "h2", "p", "ul", "li", "a", "span", "strong"}
_CSS = {
    "background",
    "border",
    "border-radius",
    "border-top",
    "color",
    "display",
    "font-family",
    "font-size",
    "font-weight",
    "line-height",
    "margin",
    "margin-top",
    "max-width",
    "overflow-wrap",
    "padding",
    "padding-top",
    "word-break",
}


@cache
def _cleaner() -> Any:
    import nh3

    return nh3.Cleaner(
        tags=_HTML_TAGS,
        attributes={"*": {"style"}, "a": {"href"}},
        url_schemes={"http", "https"},
        filter_style_properties=_CSS,
        link_rel="noopener noreferrer",
        strip_comments=True,
        clean_content_tags={"script", "style"},
    )


def sanitize_html(fragment: str) -> str:
    """``fragment`` with everything the digest does not need taken out (nh3, i.e. ammonia)."""
    return str(_cleaner().clean(fragment))


def _digest_html(digest: Digest, links: int) -> str:
    title, subtitle = _heading(digest)
    stories: list[dict[str, Any]] = [
        {
            "title": entry.story.title,
            "growth": _growth(entry),
            "source_line": _sources(entry.story),
            "terms": entry.story.terms,
            "summary": entry.story.summary,
            "links": story_links(entry.story, links),
        }
        for entry in digest.entries
    ]
    more = [
        {
            "title": entry.story.title,
            "sources": plural(len(entry.story.sources), "source"),
            "link": _compact(entry)[1],
        }
        for entry in digest.more
    ]
    from markupsafe import Markup

    body = (
        _templates()
        .get_template("digest_body.html")
        .render(
            title=title,
            subtitle=subtitle,
            stories=stories,
            more=more,
            more_heading=_more_heading(digest) if more else "",
            failing=digest.failing_feeds,
        )
    )
    return (
        _templates()
        .get_template("digest.html")
        .render(title=title, body=Markup(sanitize_html(body)))
    )


# --- browsing ---------------------------------------------------------------------------------


def article_ref(article_id: int) -> str:
    """An article's id as text shows it, ``a43``: never to be taken for story 43, which is
    shown ``[43]``. Commands take either form of an article id; the JSON keeps the number."""
    return f"a{article_id}"


def render_stories(stories: Sequence[StoryView]) -> str:
    if not stories:
        return "No stories. Try --since all or --min-size 1.\n"
    lines = []
    for story in stories:
        lines.append(f"[{story.id}] {story.title}")
        detail = f"{story.status}, {plural(story.size, 'article')}, {_sources(story, most=4)}"
        lines += _wrap(detail, "      ")
        if story.terms:
            lines += _wrap("terms: " + ", ".join(story.terms), "      ")
    return "\n".join(lines) + "\n"


def render_story(story: StoryView, *, why: bool = False) -> str:
    """A story and its timeline; with ``why``, what placed each article in it."""
    lines = [f"[{story.id}] {story.title}"]
    lines.append(f"{story.status}, {plural(story.size, 'article')}, {_sources(story, most=20)}")
    lines.append(f"first seen {when(story.first_seen)}, last seen {when(story.last_seen)}")
    if story.terms:
        lines.append("terms: " + ", ".join(story.terms))
    for sentence in story.summary:
        said = f"“{sentence.text}” ({sentence.feed}, article {sentence.article_id})"
        lines += _wrap(said, "", " ")
    lines.append("")
    for article in story.articles:
        saved = "  (saved)" if article.saved else ""
        lines.append(f"{when(article.published)}  {article.feed}{saved}")
        lines += _wrap(f"[{article_ref(article.id)}] {article.title}", "  ")
        if article.url:
            lines.append(f"  {article.url}")
        for dup in article.duplicates:
            lines.append(f"  also in {dup.feed}: {dup.url or '(no link)'}")
        if why:
            lines += _wrap("why: " + explain_placement(article), "  ", "     ")
    return "\n".join(lines) + "\n"


def explain_placement(article: ArticleView) -> str:
    """One line on how an article came into its story."""
    if article.placed_by == "user":
        return "moved here by you (story split, move or merge)"
    merged = article.placed_in is not None and article.placed_in != article.story_id
    if article.similarity is None:
        text = f"began story {article.placed_in}" if merged else "began this story"
    else:
        text = f"similarity {article.similarity:.2f}"
        if article.cosine is not None and article.quiet_hours is not None:
            # As shown, so that the figures on the line add up.
            cost = round(article.cosine, 2) - round(article.similarity, 2)
            if cost > 0.005:  # at least 0.01 as shown (floats do not subtract exactly)
                text += f": cosine {article.cosine:.2f} less {cost:.2f} for "
                text += f"{_quiet(article.quiet_hours)} quiet"
        if article.shared_terms:
            text += "; shares " + ", ".join(article.shared_terms)
        if merged:
            text = f"joined story {article.placed_in} ({text})"
    if merged:
        text += f", which was merged into story {article.story_id}"
    return text


def _quiet(hours: float) -> str:
    """How long a story had been quiet: minutes under an hour, else hours."""
    return f"{round(hours * 60)} min" if hours < 1 else f"{hours:.1f} h"


def render_articles(articles: Sequence[ArticleView]) -> str:
    if not articles:
        return "No articles.\n"
    lines = []
    for article in articles:
        story = f"  story {article.story_id}" if article.story_id else ""
        marks = "".join(
            f"  ({mark})" for mark, on in (("muted", article.muted), ("saved", article.saved)) if on
        )
        lines.append(f"[{article_ref(article.id)}] {article.title}")
        lines.append(f"      {when(article.published)}  {article.feed}{story}{marks}")
        if article.snippet is not None and article.snippet.spans:
            lines += _wrap(article.snippet.text, "      ")  # where the summary matched
        if article.url:
            lines.append(f"      {article.url}")
    return "\n".join(lines) + "\n"


def render_feeds(feeds: Sequence[FeedView]) -> str:
    """Each feed with its health, then a line of totals by status."""
    if not feeds:
        return "No feeds. Add one with: aggregator feeds add URL\n"
    lines = []
    for feed in feeds:
        lines.append(f"{feed.title or feed.url}  [{feed.status}]")
        lines.append(f"    {feed.url}")
        if feed.duplicate_of:
            lines.append(
                f"    moved to {feed.effective_url}, which is the feed {feed.duplicate_of}"
            )
            lines.append("    (fetched once, as that feed; remove one of the two from the config)")
        elif feed.effective_url:
            lines.append(f"    moved to {feed.effective_url}")
        if feed.retry_after:
            lines.append(f"    the server asked us to wait until {when(feed.retry_after)}")
        if feed.last_error and (feed.error_count or feed.status == FeedHealth.GONE):
            errors = f"{plural(feed.error_count, 'error')} in a row" if feed.error_count else "gone"
            at = f" at {when(feed.last_error_at)}" if feed.last_error_at else ""
            message = " ".join(feed.last_error.split())
            lines.append(_one_line(f"    {errors}; last{at}: {message}"))
        success = when(feed.last_success) if feed.last_success else "never"
        if feed.status in (FeedHealth.GONE, FeedHealth.DUPLICATE):
            due = "never"
        else:
            due = when(feed.next_due) if feed.next_due else "now"
        ratio = feed.not_modified_ratio
        unchanged = f", {ratio:.0%} not modified" if ratio is not None else ""
        lines.append(
            f"    last success {success}, next due {due}, "
            f"{plural(feed.item_count, 'item')}{unchanged}"
        )
    totals = Counter(feed.status for feed in feeds)
    summary = ", ".join(f"{n:,} {status}" for status, n in sorted(totals.items()))
    lines.append(f"{plural(len(feeds), 'feed')}: {summary}")
    return "\n".join(lines) + "\n"


def _span(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def render_eval(report: EvalReport) -> str:
    b, p = report.bcubed, report.pairwise
    return "\n".join(
        [
            f"items              {report.items:,}",
            f"true stories       {report.true_stories:,}",
            f"predicted stories  {report.predicted_stories:,}",
            f"B3  precision {b.precision:.4f}  recall {b.recall:.4f}  F1 {b.f1:.4f}",
            f"pairwise  precision {p.precision:.4f}  recall {p.recall:.4f}  F1 {p.f1:.4f}",
            f"ARI                {report.ari:.4f}",
            f"story span         median {_span(report.median_span)}"
            " from a story's first article to its last",
            *(
                [
                    f"distractors        {report.distractors_pulled:,} of "
                    f"{report.distractors:,} pulled into a story"
                    f" ({report.distractors_pulled / report.distractors:.1%})"
                ]
                if report.distractors
                else []
            ),
            f"speed              {report.docs_per_second:,.0f} documents/s",
            "",
        ]
    )


def size_text(count: int) -> str:
    """ "1.2 GB", "350 MB", "12 kB": a size in bytes as a person reads it (powers of 1000)."""
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def render_prune(report: PruneReport) -> str:
    """What `db prune` removed, or with --dry-run would remove."""
    before = when(report.cutoff)
    if report.dry_run:
        return (
            f"would remove {plural(report.articles, 'article')} first seen before {before} "
            f"and {plural(report.stories, 'story')} left without articles (dry run: nothing "
            "changed)"
        )
    text = (
        f"removed {plural(report.articles, 'article')} first seen before {before} and "
        f"{plural(report.stories, 'story')} left without articles"
    )
    if report.articles:
        text += (
            f"; {plural(report.seen_records, 'item')} still in their feeds remembered; "
            f"{size_text(report.freed_bytes)} given back; longest lock "
            f"{report.longest_lock:.2f} s over {plural(report.batches, 'batch')}, "
            f"{report.seconds:.1f} s in all"
        )
    return text


def render_stats(stats: DatabaseStats) -> str:
    """`db stats`: size, contents, the oldest article, and the next prune."""
    space = stats.space
    oldest = when(space.oldest_article) if space.oldest_article else "none"
    lines = [
        f"size            {size_text(space.file_bytes)} ({size_text(space.free_bytes)} free "
        "inside)",
        f"articles        {space.articles:,} ({space.saved:,} saved)",
        f"stories         {space.stories:,}",
        f"oldest article  {oldest}",
    ]
    if stats.keep is None:
        lines.append("keep            all (database.keep: nothing is pruned)")
    else:
        days = stats.keep.total_seconds() / 86400
        lines.append(f"keep            {days:g} days (database.keep), saved articles for good")
        last = when(stats.last_prune) if stats.last_prune else "never"
        lines.append(f"last prune      {last}")
    if stats.next_prune is not None:
        lines.append(
            f"next prune      {plural(stats.next_prune.articles, 'article')} and "
            f"{plural(stats.next_prune.stories, 'story')} "
            f"(first seen before {when(stats.next_prune.cutoff)})"
        )
    if space.seen_records:
        lines.append(f"pruned items still in their feeds  {space.seen_records:,}")
    if not space.auto_vacuum:
        lines.append("auto_vacuum     not yet: the next prune rebuilds the file once")
    return "\n".join(lines) + "\n"
