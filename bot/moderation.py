"""Moderation rules: blocked words and patterns, an allow list, NSFW terms and the NSFW policy.

A :class:`Moderator` is built from a server's saved settings (everything compiled once) and
judges a request without I/O, returning a :class:`Verdict`: the rule that blocks it (with a
rewrite suggestion), the rule an admin's ``--override`` set aside, or the NSFW term that makes
its outputs *flagged* (hidden behind a spoiler or blur) where the channel allows NSFW.

* Words and phrases match as whole words in any case: "gore" blocks "GORE!" but not "gorge".
* Allowed words are taken out of the text before any rule looks at it, so "scunthorpe" in the
  allow list keeps a pattern like ``cunt`` from firing inside it.
* Blocked patterns are Python regular expressions from a safe subset, checked when they are
  saved (:func:`pattern_problem`): short, no back-references, only bounded repeats of single
  characters or fixed groups, and a small backtracking budget. The stdlib ``re`` has no timeout,
  so the bound comes from the syntax: checking a prompt (at most :data:`MAX_CHECKED_CHARS`) costs
  at most the text length times the budget, however the pattern was written.
* NSFW terms (a small built-in list plus the server's own) only matter under the NSFW policy:
  "allow", "nsfw_channels" (the default) or "block". Discord marks channels age-restricted itself,
  and only there may adult content go, so on Discord "nsfw_channels" reads the mark and "allow"
  is not offered; on Slack and the web an admin opens a channel with its own ``nsfw`` setting.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.jobs import Origin
from bot.request import MAX_PROMPT_CHARS, GenerationRequest

NSFW_POLICIES = ("allow", "nsfw_channels", "block")
DEFAULT_NSFW_POLICY = "nsfw_channels"
MODERATION_MODES = ("off", "provider")
#: Platforms whose channels carry their own age-restricted mark (``Origin.nsfw_channel``); there
#: the mark is the only way adult content is allowed (the platform's developer policy).
MARKED_NSFW_PLATFORMS = frozenset({"discord"})

MAX_TERMS = 200
MAX_TERM_CHARS = 64
MAX_PATTERNS = 20
MAX_PATTERN_CHARS = 100
#: Most ways a pattern may try to match at one place in the text (repeat widths times choices).
MAX_PATTERN_COST = 500
#: The same, summed over a server's patterns: bounds the work of checking one prompt.
MAX_TOTAL_COST = 2000
#: Prompt and negative prompt together; longer text is cut before the rules see it.
MAX_CHECKED_CHARS = 2 * MAX_PROMPT_CHARS + 1
#: How much of the prompt an audit row keeps.
EXCERPT_CHARS = 200

#: Clearly sexual or graphic terms; servers add their own with ``nsfw_words``.
BUILTIN_NSFW_WORDS = (
    "nsfw", "nude", "nudes", "nudity", "naked", "topless", "porn", "porno", "pornographic",
    "hentai", "erotic", "erotica", "xxx", "sex", "sexual", "lewd", "genitals", "penis", "vagina",
    "nipples", "orgasm", "fetish", "bdsm", "gore", "gory", "disembowelled", "disemboweled", "dismembered",
    "decapitated", "mutilated", "beheading",
)

# The stdlib's own parser of regular expressions (private, stable since 3.11): it gives the
# tree the safety check walks. Imported by name so type checkers treat it as Any.
_sre_parser: Any = importlib.import_module("re._parser")
_WORD = re.compile(r"\w+")
#: What may stand between the words of a phrase: anything but a word character or a mask.
_GAP = r"[^\w\x00]+"
_MASK = "\x00"
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
#: Words that make no prompt on their own: a rewrite of only these is no suggestion.
_LITTLE_WORDS = frozenset({"a", "an", "the", "and", "or", "of", "with", "in", "on", "at", "to", "for", "by", "from"})


class Rule(StrEnum):
    """Which kind of rule fired."""

    BLOCKED_WORD = "blocked_word"
    BLOCKED_PATTERN = "blocked_pattern"
    NSFW_WORD = "nsfw_word"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired: its kind, the configured term (word, phrase or pattern), the text it matched."""

    rule: Rule
    term: str
    matched: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the moderator decided about one request."""

    #: The rule that refuses the prompt; ``None`` when it may be drawn.
    blocked: Hit | None = None
    #: For a refused prompt: the prompt with what fired taken out, when anything sensible is left.
    suggestion: str | None = None
    #: A rule an admin's ``--override`` set aside (drawn anyway, audited).
    overridden: Hit | None = None
    #: The NSFW term that makes the outputs flagged (spoiler or blur), where NSFW is allowed.
    flagged: Hit | None = None
    #: Whether adult content may be drawn here (for providers with an NSFW switch).
    nsfw_allowed: bool = False


class AuditAction(StrEnum):
    REFUSED = "refused"
    OVERRIDDEN = "overridden"
    FLAGGED = "flagged"
    SETTINGS_CHANGED = "settings_changed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the moderation audit log; ``id`` is set by storage (0 before it is recorded)."""

    at: float
    platform: str
    server_id: str
    channel_id: str
    user_id: str
    action: AuditAction
    rule: str = ""
    term: str = ""
    #: The prompt (or the changed settings), cut to :data:`EXCERPT_CHARS`.
    prompt: str = ""
    user_name: str = ""
    job_id: str | None = None
    id: int = 0


def excerpt(text: str) -> str:
    """``text`` on one line, cut to what an audit row keeps."""
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


# --- the policy ------------------------------------------------------------------------------------
def nsfw_allowed(policy: str | None, origin: Origin) -> bool:
    """Whether adult content may be drawn where ``origin`` asks, under ``policy``."""
    policy = policy or DEFAULT_NSFW_POLICY
    if policy == "block":
        return False
    if policy == "allow" and origin.platform not in MARKED_NSFW_PLATFORMS:
        return True
    return origin.nsfw_channel


def nsfw_setting_problem(platform: str, value: str | None) -> str | None:
    """Why ``value`` can't be the ``nsfw`` setting on ``platform``, or None."""
    if value == "allow" and platform in MARKED_NSFW_PLATFORMS:
        return (
            f"{platform.capitalize()} allows adult content only in age-restricted channels, so 'nsfw' "
            "is 'nsfw_channels' (mark the channel age-restricted) or 'block' here."
        )
    return None


# --- validating terms and patterns -------------------------------------------------------------------
def terms_problem(terms: Sequence[str]) -> str | None:
    """Why a list of words or phrases can't be saved, or None."""
    if len(terms) > MAX_TERMS:
        return f"holds at most {MAX_TERMS} entries"
    for term in terms:
        if len(term) > MAX_TERM_CHARS:
            return f"entries are at most {MAX_TERM_CHARS} characters ('{term[:20]}…' is longer)"
        if not _WORD.search(term):
            return f"entries need a letter or digit ('{term}' has none)"
    return None


def patterns_problem(patterns: Sequence[str]) -> str | None:
    """Why a list of blocked patterns can't be saved, or None."""
    if len(patterns) > MAX_PATTERNS:
        return f"holds at most {MAX_PATTERNS} patterns"
    total = 0
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            return f"'{pattern[:40]}' {problem}"
        total += _cost(_parse(pattern))
    if total > MAX_TOTAL_COST:
        return "are too complex together: use fewer or simpler patterns"
    return None


def pattern_problem(pattern: str) -> str | None:
    """Why one pattern is not in the safe subset, or None. Never raises."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"is longer than {MAX_PATTERN_CHARS} characters"
    try:
        with warnings.catch_warnings():
            # "Possible nested set" and the like: syntax whose meaning a later Python changes.
            warnings.simplefilter("error")
            re.compile(pattern, re.IGNORECASE)
            tree = _parse(pattern)
        if tree.getwidth()[0] == 0:
            return "matches empty text, so it would block every prompt"
        _cost(tree)
    except _Unsafe as exc:
        return str(exc)
    except re.error as exc:
        return f"is not a valid regular expression ({exc.msg})"
    except Warning:
        return "uses syntax a later Python reads differently (like [[ or --): escape it, e.g. \\["
    except (OverflowError, RecursionError, ValueError, TypeError, IndexError):
        return "is not a valid regular expression"
    return None


class _Unsafe(Exception):
    """A pattern outside the safe subset; the message says what to write instead."""


def _parse(pattern: str) -> Any:
    return _sre_parser.parse(pattern, re.IGNORECASE)


def _cost(items: Iterable[tuple[Any, Any]]) -> int:
    """Ways the items may try to match at one place: repeat widths and alternatives multiplied."""
    total = 1
    for op, arg in items:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise _Unsafe("uses a back-reference (\\1), which can make checks very slow")
        if name in _REPEATS:
            low, high, body = arg
            if high == _sre_parser.MAXREPEAT:
                raise _Unsafe("has an unbounded repeat (*, + or {n,}): use a bounded one like {1,10}")
            inner = _cost(body)
            if high > 1 and inner > 1:
                raise _Unsafe("repeats a part that has choices or repeats itself: repeat single characters, "
                              "classes or fixed text, e.g. [a-z]{1,10} or (ab){1,3}")
            total *= (high - low + 1) * inner
        elif name == "BRANCH":
            total *= sum(_cost(branch) for branch in arg[1])
        elif name == "SUBPATTERN":
            total *= _cost(arg[3])
        elif name in ("ASSERT", "ASSERT_NOT"):
            total *= _cost(arg[1])
        elif name == "ATOMIC_GROUP":
            total *= _cost(arg)
        if total > MAX_PATTERN_COST:
            raise _Unsafe("is too complex (too many ways to match): use smaller repeat counts or fewer choices")
    return total


# --- matching ----------------------------------------------------------------------------------------
class _Phrases:
    """Many words and phrases matched at once, as whole words in any case."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries: dict[str, str] = {}
        for entry in entries:
            key = _key(entry)
            if key:
                self._entries.setdefault(key, entry)
        # Longest first, so "hot dog" is found rather than "hot" where both are listed.
        keys = sorted(self._entries, key=len, reverse=True)
        body = "|".join(_GAP.join(map(re.escape, key.split())) for key in keys)
        self._regex = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE) if keys else None

    def find(self, text: str) -> tuple[str, str] | None:
        """(the listed entry, the text it matched) for the first match, or None."""
        if self._regex is None:
            return None
        match = self._regex.search(text)
        if match is None:
            return None
        return self._entries.get(_key(match[0]), match[0]), match[0]

    def sub(self, text: str, replacement: str) -> str:
        return text if self._regex is None else self._regex.sub(replacement, text)

    def findall(self, text: str) -> list[str]:
        return [] if self._regex is None else [m[0] for m in self._regex.finditer(text)]


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class Moderator:
    """One server's rules, compiled once; :meth:`check` judges a request."""

    def __init__(
        self,
        *,
        blocked_words: Iterable[str] = (),
        blocked_patterns: Iterable[str] = (),
        allowed_words: Iterable[str] = (),
        nsfw_words: Iterable[str] = (),
    ) -> None:
        self._blocked = _Phrases(blocked_words)
        self._allowed = _Phrases(allowed_words)
        self._nsfw = _Phrases([*BUILTIN_NSFW_WORDS, *nsfw_words])
        # Patterns were checked when saved; one that fails today's check is skipped, not run.
        self._patterns = [
            (p, re.compile(p, re.IGNORECASE)) for p in blocked_patterns if pattern_problem(p) is None
        ]

    def check(self, request: GenerationRequest, origin: Origin, policy: str | None, *,
              prompt: str | None = None) -> Verdict:
        """Judge ``request`` from ``origin`` under the channel's NSFW ``policy``.

        ``prompt`` is the text the provider will get (the style's wrapper applied), when it
        differs from the user's. Blocked words and patterns look at the negative prompt too;
        NSFW terms do not ("--no nsfw" is a common, harmless negative).
        """
        allowed_here = nsfw_allowed(policy, origin)
        positive = self._masked(prompt or request.prompt)
        negative = self._masked(request.negative_prompt or "")
        nsfw = self._nsfw_hit(positive)
        hit = self._blocking_hit(positive + _MASK + negative, nsfw if not allowed_here else None)
        if hit is None:
            return Verdict(flagged=nsfw, nsfw_allowed=allowed_here)
        if request.override and origin.is_admin:
            return Verdict(overridden=hit, flagged=nsfw, nsfw_allowed=allowed_here or nsfw is not None)
        return Verdict(blocked=hit, suggestion=self.rewrite(request.prompt, allowed_here), nsfw_allowed=allowed_here)

    def rewrite(self, prompt: str, nsfw_ok: bool) -> str | None:
        """``prompt`` with every blocked part taken out, or None when nothing sensible is left."""
        text = prompt
        for _ in range(8):
            masked = self._masked(text)
            hit = self._blocking_hit(masked, None if nsfw_ok else self._nsfw_hit(masked))
            if hit is None:
                break
            # Tidied each time: closing up the gap can make a new match ("kill gore him").
            text = _tidy(self._unmasked(self._without(masked, hit), text))
        else:
            return None
        worthwhile = any(len(word) > 1 and word.lower() not in _LITTLE_WORDS for word in _WORD.findall(text))
        return text if worthwhile and text.lower() != " ".join(prompt.split()).lower() else None

    # --- internals ----------------------------------------------------------------------------
    def _blocking_hit(self, text: str, nsfw: Hit | None) -> Hit | None:
        found = self._blocked.find(text)
        if found is not None:
            return Hit(Rule.BLOCKED_WORD, *found)
        for source, pattern in self._patterns:
            match = pattern.search(text)
            if match is not None:
                return Hit(Rule.BLOCKED_PATTERN, source, match[0])
        return nsfw

    def _nsfw_hit(self, text: str) -> Hit | None:
        found = self._nsfw.find(text)
        return None if found is None else Hit(Rule.NSFW_WORD, *found)

    def _without(self, text: str, hit: Hit) -> str:
        if hit.rule is Rule.BLOCKED_PATTERN:
            return next(p for s, p in self._patterns if s == hit.term).sub(" ", text)
        return _Phrases([hit.term]).sub(text, " ")

    def _masked(self, text: str) -> str:
        """The text with allowed words replaced by a mask no rule matches."""
        return self._allowed.sub(text[:MAX_CHECKED_CHARS].replace(_MASK, " "), _MASK)

    def _unmasked(self, text: str, original: str) -> str:
        """Masks in ``text`` put back as the allowed words they hid in ``original``."""
        spans = iter(self._allowed.findall(original[:MAX_CHECKED_CHARS].replace(_MASK, " ")))
        return re.sub(_MASK, lambda _: next(spans, ""), text)


def _tidy(text: str) -> str:
    """Whitespace and punctuation left tidy after words were taken out."""
    text = " ".join(text.split())
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    return text.strip(" ,;:-")
