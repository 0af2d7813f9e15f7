"""A story's summary: its one or two most central sentences, taken from its articles' own
summaries. Pure: no I/O.

Nothing is ever written here, only chosen. Each article's summary is cleaned of what feeds add
around the news (see ``sentences``), cut into sentences, and every sentence is weighed by
TF-IDF against all the others and the articles' headlines: the sum of its cosine similarities
to them (degree centrality, LexRank without the power iteration). That sum is one dot product
with the sum of the normalised vectors, so a story of n sentences costs O(n), not O(n²).

The best sentence leads; a second follows when it is nearly as central, says something the
first does not, and fits. A story whose articles carry no usable summary (headline-only feeds)
gets none: no summary is better than a poor one.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .models import SummarySentence, SummarySource

__all__ = ["MAX_CHARS", "choose_summary", "sentences", "story_summaries"]

MAX_CHARS = 320  # the two sentences together, at most
MIN_WORDS, MAX_WORDS = 6, 60  # shorter is a fragment, longer a run-on list of links
SECOND_SHARE = 0.6  # a second sentence needs this share of the first one's centrality
SECOND_OVERLAP = 0.3  # and no more than this cosine similarity to it
MAX_ARTICLES = 50  # the earliest ones of a very big story are enough to find its centre
MAX_PER_SUMMARY = 5  # sentences taken from one article's summary
MAX_TEXT = 1500  # characters of a summary read

# --- cleaning ---------------------------------------------------------------------------------

# Whatever follows one of these is the feed's, not the news: cut from there to the end.
_TAILS = re.compile(
    r"""(?:
        \bThe\s+post\s+.{1,300}?\s+appeared\s+first\s+on\b
      | \bContinue\s+reading\b
      | \bRead\s+(?:more|the\s+(?:full|rest|whole)\b)
      | \bKeep\s+reading\b
      | \b(?:Click|Tap)\s+here\s+to\s+read\b
      | \bThis\s+(?:article|story|post)\s+(?:was\s+)?(?:originally\s+)?(?:appeared|published)\b
    ).*\Z""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
# Elisions ("[…]", "[...]", "(…)") join pieces that are not one sentence: a break.
_ELISION = re.compile(r"\s*[\[(](?:…|\.{3})[\])]\s*")
# Credits in brackets: "[Photo courtesy of P. Kafasis]", "(Image: Reuters)".
_BRACKETED_CREDIT = re.compile(
    r"\s*[\[(](?:photo|image|picture|photograph|illustration|video|credit|graphic)s?\b[^\])]{0,200}[\])]\s*",
    re.IGNORECASE,
)
# A caption and its credit run into the text: "The X factor Image by Jane Doe/IDG There's …".
_INLINE_CREDIT = re.compile(
    r"""^.{0,100}?\b(?:image|photo|photograph|picture)s?\s+(?:by|credit:?|courtesy\s+of)\s+
        [\w .'’-]{1,60}/[\w.&'’-]+\s+(?=[A-Z“"‘])""",
    re.IGNORECASE | re.VERBOSE,
)
# A sentence that is a credit or boilerplate, not news.
_JUNK = re.compile(
    r"""^(?:photo|image|picture|photograph|illustration|graphic)s?(?:\s+credit)?\s*(?:by\b|:|courtesy\b)
      | ^(?:credit|source|via)\s*:
      | \b(?:sponsored\s+by|promo\s+code|use\s+code|subscribe\s+(?:now|to|here)|sign\s+up\s+for
         |follow\s+us\s+on|all\s+rights\s+reserved|newsletter|click\s+here|advertisement)\b
      | ^(?:updated|published|posted)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
# "WASHINGTON (Reuters) - ", "LONDON, March 3 (AP) — ", "NEW YORK — ": a dateline before the news.
_DATELINE = re.compile(
    r"""^(?:[A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+){0,3})      # the place, in capitals
        (?:,\s*[A-Z][a-z]{2,8}\.?\s+\d{1,2})?               # ", March 3"
        (?:\s*\([A-Za-z .&]{2,30}\))?                       # " (Reuters)"
        \s*[-–—:]+\s+""",
    re.VERBOSE,
)
# "By Jane Doe, Reuters | ", "By JANE DOE and JOHN ROE - ", "By Jane Doe\u2002": a byline.
_NAME = r"[A-Z][\w.'’-]*"
_BYLINE = re.compile(
    rf"""^By\s+{_NAME}(?:\s+{_NAME}){{0,3}}(?:\s+and\s+{_NAME}(?:\s+{_NAME}){{0,3}})?
         (?:\s*,\s*[^.|–—]{{1,40}}?)?\s*(?:[|•·–—]|\s-\s|$)\s*""",
    re.VERBOSE,
)
# A sentence ends at . ! ? (or … , which marks a cut) and any closing quotes or brackets.
_END = re.compile(r"""[.!?…]["”’)\]]*(?=\s|\Z)""")
_FINISHED = re.compile(r"""[.!?]["”’)\]]*\Z""")
# Abbreviations a sentence does not end at.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "col", "lt", "st", "jr", "sr",
    "inc", "co", "corp", "ltd", "no", "vs", "u.s", "u.k", "u.n", "e.g", "i.e", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "est",
}  # fmt: skip
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    it its this that these those he she they we you i his her their our your not no so than
    then there here has have had do does did will would can could should may might must
    said says say also about after before over into out up down more most new one two""".split()  # noqa: SIM905
)


def _split(text: str) -> list[str]:
    """``text`` cut into sentences, each as it is written."""
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        before = text[start : match.start()].rsplit(None, 1)
        last_word = before[-1].lower().rstrip(".") if before else ""
        if match.group().startswith(".") and (
            last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())
        ):
            continue  # "Mr.", "U.S.", an initial
        following = text[end:].lstrip()
        if following and not (following[0].isupper() or following[0] in "\"“‘'(0123456789"):
            continue  # "…and so on. and more": not a new sentence
        pieces.append(text[start:end].strip())
        start = end
    if text[start:].strip():
        pieces.append(text[start:].strip())
    return pieces


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1]


def _repeats(said: set[str], headline: set[str]) -> bool:
    """The sentence's words say no more than the headline's do."""
    return bool(said) and len(said - headline) <= max(1, len(said) // 5)


def sentences(summary: str, title: str) -> list[str]:
    """The usable sentences of an article's summary, each verbatim from it (whitespace aside).

    Gone: "The post … appeared first on …", "Continue reading…", "Read more" and what follows
    them; "[…]"; bylines and datelines at the start; image credits; sentences cut off (ending
    in "…" or no full stop, as a clipped summary's last one does); sentences that only repeat
    the headline; fragments and run-on lists of links; promotions.
    """
    return [sentence for sentence, _ in _sentences(summary, title)]


@lru_cache(maxsize=4096)
def _sentences(summary: str, title: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``sentences``, each with its words (kept: a story's articles are read again each time
    it changes within a poll)."""
    # The first sentences are the ones that matter: a long text is read no further than this,
    # and the sentence it cuts is dropped as unfinished.
    text = " ".join(summary[:MAX_TEXT].split())
    text = _TAILS.sub("", text)
    text = _BRACKETED_CREDIT.sub(" ", text)
    headline = set(_words(title))
    found: list[tuple[str, tuple[str, ...]]] = []
    for part in _ELISION.split(text):
        part = part.strip()
        for prefix in (_BYLINE, _DATELINE):
            part = prefix.sub("", part, count=1)
        for sentence in _split(part):
            sentence = _BYLINE.sub("", sentence, count=1)
            sentence = _INLINE_CREDIT.sub("", sentence, count=1)
            words = _words(sentence)
            if (
                len(words) >= 3
                and _FINISHED.search(sentence)
                and MIN_WORDS <= len(sentence.split()) <= MAX_WORDS
                and not _JUNK.search(sentence)
                and not _repeats(set(words), headline)
            ):
                found.append((sentence, tuple(words)))
        if len(found) >= MAX_PER_SUMMARY:
            break
    return tuple(found[:MAX_PER_SUMMARY])


# --- choosing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    text: str
    source: SummarySource
    position: int  # in its article's summary: the lede is 0
    vector: dict[str, float]


def _vector(words: Iterable[str], idf: Mapping[str, float]) -> dict[str, float]:
    counts = Counter(words)
    weights = {w: (1 + math.log(n)) * idf[w] for w, n in counts.items()}
    norm = math.sqrt(sum(v * v for v in weights.values()))
    return {w: v / norm for w, v in weights.items()} if norm else {}


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(w, 0.0) for w, v in a.items())


def choose_summary(articles: Sequence[SummarySource]) -> tuple[SummarySentence, ...]:
    """One or two sentences that say what the story is, each from one of ``articles``."""
    chosen_articles = sorted(articles, key=lambda a: (a.published, a.article_id))[:MAX_ARTICLES]
    texts: list[tuple[str, SummarySource, int, tuple[str, ...]]] = []
    copies: Counter[tuple[str, ...]] = Counter()  # a wire copy's sentence is one candidate,
    for article in chosen_articles:  # for its first outlet, and each copy supports it
        for position, (text, words) in enumerate(_sentences(article.summary, article.title)):
            if not copies[words]:
                texts.append((text, article, position, words))
            copies[words] += 1
    if not texts:
        return ()
    titles = list(dict.fromkeys(a.title for a in chosen_articles))
    documents = [words for *_, words in texts] + [tuple(_words(t)) for t in titles]
    df = Counter(w for words in documents for w in set(words))
    total = len(documents)
    idf = {w: math.log((total + 1) / (n + 1)) + 1 for w, n in df.items()}
    candidates = [
        _Candidate(text, source, position, _vector(words, idf))
        for text, source, position, words in texts
    ]
    # The sum of every normalised vector, headlines included: a sentence's dot product with it,
    # less its own, is the sum of its cosine similarities to all the others.
    centre: defaultdict[str, float] = defaultdict(float)
    headlines = [_vector(words, idf) for words in documents[len(texts) :]]
    weighted = [(c.vector, copies[words]) for c, (*_, words) in zip(candidates, texts, strict=True)]
    for vector, times in weighted + [(h, 1) for h in headlines]:
        for word, weight in vector.items():
            centre[word] += weight * times
    scored = sorted(
        (
            (_dot(c.vector, centre) - _dot(c.vector, c.vector), -c.position, i)
            for i, c in enumerate(candidates)
        ),
        reverse=True,
    )
    best_score, _, best_index = scored[0]
    if best_score <= 0:  # it shares no word with anything else in the story: not its centre
        return ()
    first = candidates[best_index]
    picked = [first]
    for score, _, index in scored[1:]:
        other = candidates[index]
        if score < SECOND_SHARE * best_score:
            break
        if (
            _dot(other.vector, first.vector) <= SECOND_OVERLAP
            and len(first.text) + 1 + len(other.text) <= MAX_CHARS
        ):
            picked.append(other)
            break
    return tuple(SummarySentence(c.text, c.source.feed, c.source.article_id) for c in picked)


def story_summaries(
    stories: Mapping[int, Sequence[SummarySource]],
) -> dict[int, tuple[SummarySentence, ...]]:
    """Each story's summary (empty when it has none), by story id."""
    return {story_id: choose_summary(articles) for story_id, articles in stories.items()}
