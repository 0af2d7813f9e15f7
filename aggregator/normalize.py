"""Turn a ParsedEntry into an Article: plain text, UTC time, canonical URL and content hash."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from .models import Article, ParsedEntry

__all__ = [
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "canonical_url",
    "content_hash",
    "html_to_text",
    "normalize_entry",
]

# Query parameters that only say how a reader got to a link, never which page it is.
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "mtm_", "pk_", "hsa_", "__hs", "_hs")
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "mc_cid", "mc_eid", "igshid", "igsh", "ncid", "cmpid", "cmp", "ocid", "icid", "mbid",
        "ref_src", "ref_url", "rss", "smid", "sr_share", "soc_src", "soc_trk", "xtor",
        "ito", "s_cid", "cid_source", "spm", "at_medium", "at_campaign", "guccounter",
        "_ga", "_gl", "oly_anon_id", "oly_enc_id", "vero_id", "wt_mc", "wt.mc_id",
        "feature", "amp",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
# How far ahead of our clock a feed's date may be before we call it wrong.
FUTURE_TOLERANCE = timedelta(minutes=10)
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|section|article|header|footer|"
    r"table|dd|dt|pre|hr|figure|figcaption)\b)",
    re.IGNORECASE,
)
# C0 and C1 control characters: a feed must not send escape codes to the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Before this, a date is an error in the feed (year 1, a zero timestamp): we use first-seen.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
# Elements whose content is not text to read: code, styles, and others whose content HTML
# parses as raw text, which would otherwise come out as markup.
_NOT_TEXT = {
    "script", "style", "noscript", "noembed", "noframes", "xmp", "textarea", "title", "plaintext",
    "template",
}  # fmt: skip
# An <iframe> is an embed; its content is raw text to an HTML parser, so one left unclosed (as
# Blogger leaves them) would turn the rest of a summary into markup. Its tags are dropped.
_IFRAME_TAG = re.compile(r"</?iframe\b[^>]*>", re.IGNORECASE)
MAX_HTML = 16 * 1024  # characters of a field's markup that are read
MAX_TITLE = 500
MAX_SUMMARY = 4000


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The form of a link that identifies its page: see docs/how-it-works.md, "Canonical URLs"."""
    if not url:
        return None
    try:
        parts = urlsplit(_absolute(url.strip(), base))
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if host.startswith("amp."):
        host = host[4:]
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    path = re.sub(r"/amp/?$", "/", path)
    path = re.sub(r"\.amp\.html$", ".html", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    query.sort()
    # Both schemes fold to https: outlets serve the same page on each.
    return urlunsplit(("https", netloc, path, urlencode(query), ""))


def html_to_text(value: str | None) -> str:
    """Strip markup with nh3 (dropping script and style bodies), unescape, fold white space."""
    if not value:
        return ""
    # Only so much text is kept, and nh3's time grows with the square of how deeply tags nest
    # (200,000 nested <div> took two minutes): the markup is cut before it is cleaned.
    value = _CONTROL.sub(" ", value[:MAX_HTML])
    if "<" in value or "&" in value:
        # A space where a block ends, so "<p>One.</p><p>Two.</p>" does not read "One.Two."
        value = _BLOCK_TAG.sub(" <", _IFRAME_TAG.sub(" ", value))
        value = nh3.clean(value, tags=set(), clean_content_tags=_NOT_TEXT)
        value = _CONTROL.sub(" ", html.unescape(value))  # &#27; is an escape code too
    return " ".join(value.split())


def content_hash(title: str, summary: str) -> str:
    """A stable fingerprint of what an item says, for items with neither guid nor link."""
    text = f"{title.casefold()}\n{summary.casefold()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def normalize_entry(
    entry: ParsedEntry, *, feed_url: str, feed_link: str | None, now: datetime
) -> Article | None:
    """An Article, or None for an item with nothing to show or to identify it by."""
    title = _clip(html_to_text(entry.title), MAX_TITLE)
    summary = _clip(html_to_text(entry.summary), MAX_SUMMARY)
    link = _CONTROL.sub("", entry.link).strip() if entry.link else None
    canonical = canonical_url(link, base=feed_link)
    if not title:
        title = _clip(summary, 120) if summary else (canonical or "")
    if not title:
        return None
    published = entry.published
    if published is None or published > now + FUTURE_TOLERANCE or published < EARLIEST:
        published = now
    guid = _CONTROL.sub("", entry.guid).strip()[:1000] if entry.guid else None
    return Article(
        feed_url=feed_url,
        guid=guid or None,
        url=_absolute(link, feed_link) if link else None,
        canonical_url=canonical,
        title=title,
        summary=summary,
        published=published,
        first_seen=now,
        content_hash=content_hash(title, summary),
    )


def _absolute(link: str, base: str | None) -> str:
    """``link`` resolved against ``base``; as it is when either cannot be parsed."""
    if not base:
        return link
    try:
        return urljoin(base, link)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return link


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"
