"""The moderator: words, patterns, the allow list, NSFW terms and policy, overrides and rewrites."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InvalidRequest
from bot.jobs import Origin
from bot.moderation import (
    MAX_CHECKED_CHARS,
    Moderator,
    Rule,
    nsfw_allowed,
    nsfw_setting_problem,
    pattern_problem,
    patterns_problem,
)
from bot.request import GenerationRequest
from bot.settings import ScopeSettings, parse_settings

WEB = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")
WEB_ADMIN = Origin(platform="web", server_id="local", channel_id="general", user_id="root", is_admin=True)
DISCORD = Origin(platform="discord", server_id="g", channel_id="c", user_id="u")
DISCORD_NSFW = Origin(platform="discord", server_id="g", channel_id="c", user_id="u", nsfw_channel=True)

RULES = Moderator(
    blocked_words=["gore", "hot dog"],
    blocked_patterns=[r"n[i1]pp?les?", "cunt", r"k[i1]ll\s{1,3}(him|her)"],
    allowed_words=["scunthorpe", "photo shoot"],
    nsfw_words=["spicy"],
)


def check(prompt: str, origin: Origin = WEB, policy: str | None = None, **fields: object):  # type: ignore[no-untyped-def]
    return RULES.check(GenerationRequest(prompt=prompt, **fields), origin, policy)  # type: ignore[arg-type]


# --- words, phrases, patterns and the allow list ---------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "rule", "term", "matched"),
    [
        ("a GORE scene", Rule.BLOCKED_WORD, "gore", "GORE"),
        ("a hot-dog stand", Rule.BLOCKED_WORD, "hot dog", "hot-dog"),
        ("hot   dog!", Rule.BLOCKED_WORD, "hot dog", "hot   dog"),
        ("n1pple art", Rule.BLOCKED_PATTERN, r"n[i1]pp?les?", "n1pple"),
        ("KILL  him now", Rule.BLOCKED_PATTERN, r"k[i1]ll\s{1,3}(him|her)", "KILL  him"),
        ("a nude portrait", Rule.NSFW_WORD, "nude", "nude"),
        ("something spicy", Rule.NSFW_WORD, "spicy", "spicy"),
    ],
)
def test_each_rule_names_itself_and_what_it_matched(prompt: str, rule: Rule, term: str, matched: str) -> None:
    verdict = check(prompt)
    assert verdict.blocked is not None
    assert (verdict.blocked.rule, verdict.blocked.term, verdict.blocked.matched) == (rule, term, matched)


@pytest.mark.parametrize("prompt", ["a gorge at dawn", "hotdogs", "a hot sunny dog", "visit scunthorpe",
                                    "a photo shoot of a hot dog vendor's cart"[:18], "kill bill", "nipplewort"[:5]])
def test_whole_words_only_and_the_allow_list_wins(prompt: str) -> None:
    assert check(prompt).blocked is None


def test_allowed_words_are_taken_out_before_patterns_and_phrases_look() -> None:
    assert check("Scunthorpe United").blocked is None  # the pattern 'cunt' would fire inside it
    assert check("a hot scunthorpe dog").blocked is None  # taking a word out does not join its neighbours
    blocked = check("a cunt in scunthorpe").blocked
    assert blocked is not None and blocked.matched == "cunt"


def test_blocked_words_look_at_the_negative_prompt_but_nsfw_terms_do_not() -> None:
    assert check("a castle", negative_prompt="gore").blocked is not None
    verdict = check("a castle", negative_prompt="nsfw, nude, blurry")
    assert verdict.blocked is None and verdict.flagged is None


def test_the_styled_prompt_is_what_is_checked() -> None:
    request = GenerationRequest(prompt="a castle", style="grim")
    verdict = RULES.check(request, WEB, None, prompt="a castle, gore everywhere")
    assert verdict.blocked is not None and verdict.blocked.term == "gore"


# --- the NSFW policy ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "origin", "allowed"),
    [
        (None, WEB, False),  # the default: only NSFW channels, and the web marks none
        ("nsfw_channels", WEB, False),
        ("allow", WEB, True),  # a web or Slack channel an admin opened
        ("block", WEB, False),
        ("nsfw_channels", DISCORD, False),
        ("nsfw_channels", DISCORD_NSFW, True),
        ("allow", DISCORD, False),  # Discord: only age-restricted channels, whatever the setting
        ("allow", DISCORD_NSFW, True),
        ("block", DISCORD_NSFW, False),
    ],
)
def test_nsfw_policy_by_channel(policy: str | None, origin: Origin, allowed: bool) -> None:
    assert nsfw_allowed(policy, origin) is allowed
    verdict = check("a nude portrait", origin, policy)
    if allowed:
        assert verdict.blocked is None and verdict.nsfw_allowed
        assert verdict.flagged is not None and verdict.flagged.term == "nude"
    else:
        assert verdict.blocked is not None and verdict.blocked.rule is Rule.NSFW_WORD


def test_a_clean_prompt_in_an_nsfw_channel_is_allowed_but_not_flagged() -> None:
    verdict = check("a lighthouse", DISCORD_NSFW)
    assert verdict.blocked is None and verdict.flagged is None and verdict.nsfw_allowed


def test_discord_cannot_be_set_to_allow_everywhere() -> None:
    assert nsfw_setting_problem("discord", "allow") is not None
    assert nsfw_setting_problem("discord", "block") is None
    assert nsfw_setting_problem("slack", "allow") is None


# --- overrides and rewrites ------------------------------------------------------------------------
def test_an_admin_override_sets_the_block_aside_and_a_members_does_not() -> None:
    verdict = check("a gore and nude scene", WEB_ADMIN, override=True)
    assert verdict.blocked is None and verdict.overridden is not None and verdict.overridden.term == "gore"
    assert verdict.flagged is not None and verdict.nsfw_allowed  # still hidden behind a spoiler
    assert check("a gore scene", WEB, override=True).blocked is not None


@pytest.mark.parametrize(
    ("prompt", "suggestion"),
    [
        ("a gore scene", "a scene"),
        ("a bloody, gore, battle scene", "a bloody, battle scene"),
        ("a nude portrait, spicy, in oils", "a portrait, in oils"),
        ("hot dog", None),  # nothing sensible is left
        ("a n1pple and gore", None),
        ("scunthorpe, cunt, castle", "scunthorpe, castle"),  # allowed words survive the rewrite
    ],
)
def test_the_rewrite_takes_out_what_fired(prompt: str, suggestion: str | None) -> None:
    assert check(prompt).suggestion == suggestion


# --- validating patterns -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)+$", "unbounded"),
        (r"a.*b", "unbounded"),
        (r"\w+x", "unbounded"),
        (r"(a|aa){1,20}", "repeats a part"),
        (r"(a{1,2}){1,5}", "repeats a part"),
        (r"(?P<x>a)(?P=x)", "back-reference"),
        (r"a.{0,30}b.{0,30}c", "too complex"),
        (r"x?", "empty"),
        ("[", "not a valid"),
        (r"a{99999999999}", "not a valid"),
        ("a" * 101, "longer than"),
    ],
)
def test_unsafe_or_broken_patterns_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("pattern", [r"g[o0]re", r"s[e3]x\w{0,5}", r"(ab){1,3}", r"\bk{1,9}", r"n.{0,20}ked"])
def test_bounded_patterns_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


def test_a_servers_patterns_have_a_total_budget() -> None:
    assert patterns_problem([r"a.{0,20}b.{0,20}c"]) is None
    assert "together" in (patterns_problem([r"a.{0,20}b.{0,20}c"] * 5) or "")


def test_settings_refuse_a_catastrophic_pattern_at_save_time() -> None:
    with pytest.raises(InvalidRequest, match="unbounded"):
        parse_settings({"blocked_patterns": r"(a+)+$"}, providers=[], scope="server")
    saved = parse_settings({"blocked_patterns": r"g[o0]re  (ab){1,3},x"}, providers=[], scope="server")
    assert saved.blocked_patterns == [r"g[o0]re", r"(ab){1,3},x"]  # spaces separate; commas stay


def test_terms_are_judged_when_saved_and_stored_ones_still_load() -> None:
    with pytest.raises(InvalidRequest, match="letter or digit"):
        parse_settings({"blocked_words": "gore, 🍆"}, providers=[], scope="server")
    stored = ScopeSettings.model_validate({"blocked_words": ["🍆"], "blocked_patterns": ["a.*b"]})
    assert Moderator(blocked_words=stored.blocked_words or (), blocked_patterns=stored.blocked_patterns or ()).check(
        GenerationRequest(prompt="a 🍆 and a cab"), WEB, None
    ).blocked is None  # an old unsafe pattern is skipped, not run


def test_the_guard_rejects_catastrophic_patterns_quickly() -> None:
    started = time.perf_counter()
    for pattern in [r"(a+)+$", r"(a|a)*b", r"(\w+\s?)+$", r"(.*a){12}", r"((a{1,9}){1,9}){1,9}"]:
        assert pattern_problem(pattern) is not None
    assert time.perf_counter() - started < 0.2


def test_the_costliest_accepted_patterns_check_the_longest_prompt_quickly() -> None:
    patterns = [r"a.{0,20}a.{0,20}b", r"a\w{0,20}a\w{0,20}c", r"b.{0,20}a.{0,20}d", r"(?:a){1,100}e"]
    assert patterns_problem(patterns) is None
    moderator = Moderator(blocked_patterns=patterns)
    request = GenerationRequest(prompt="a" * 4000, negative_prompt="a" * 4000)
    started = time.perf_counter()
    assert moderator.check(request, WEB, None).blocked is None
    assert time.perf_counter() - started < 1.0


# --- properties ------------------------------------------------------------------------------------
_REGEX_BITS = st.sampled_from([
    "a", "b", ".", r"\w", r"\s", r"\b", r"\d", "[ab]", "[^x]", "(", ")", "|", "?", "*", "+", "{1,3}", "{0,}",
    "{2}", "(?:", "(?=", "(?!", "(?<=", r"\1", "^", "$", "(?i)", "\\", "[", "]", "{", "}",
])
_PATTERNS = st.text(max_size=30) | st.lists(_REGEX_BITS, max_size=16).map("".join)


@settings(max_examples=400, deadline=None)
@given(_PATTERNS, st.text(max_size=300))
def test_any_pattern_is_judged_without_raising_and_accepted_ones_run_safely(pattern: str, prompt: str) -> None:
    problem = pattern_problem(pattern)
    if problem is not None:
        assert isinstance(problem, str) and problem
        return
    re.compile(pattern)
    moderator = Moderator(blocked_patterns=[pattern], allowed_words=["a"])
    if not prompt.strip():
        return
    verdict = moderator.check(GenerationRequest(prompt=prompt), WEB, None)
    assert verdict.blocked is None or verdict.blocked.rule in (Rule.BLOCKED_PATTERN, Rule.NSFW_WORD)


_WORDS = st.sampled_from(["gore", "GORE", "hot", "dog", "hot-dog", "n1pple", "nude", "scunthorpe", "cunt", "kill",
                          "him", "photo", "shoot", "castle", ",", "spicy", "—", "🦊", "\x00"])
_PROMPTS = st.lists(_WORDS | st.text(max_size=6), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(_PROMPTS, st.sampled_from([None, "allow", "nsfw_channels", "block"]), st.booleans())
def test_any_prompt_gets_a_verdict_and_a_suggestion_that_passes(prompt: str, policy: str | None, admin: bool) -> None:
    if not prompt.strip():
        return
    origin = WEB_ADMIN if admin else WEB
    request = GenerationRequest(prompt=prompt[:MAX_CHECKED_CHARS], override=True)
    verdict = RULES.check(request, origin, policy)
    if admin:
        assert verdict.blocked is None  # an admin's override sets every local rule aside
        return
    if verdict.blocked is not None and verdict.suggestion is not None:
        assert RULES.check(GenerationRequest(prompt=verdict.suggestion), origin, policy).blocked is None
    if verdict.flagged is not None:
        assert verdict.nsfw_allowed
