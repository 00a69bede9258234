"""The /imagine prompt syntax: flags, permutations, templates, styles, and the canonical text."""

from __future__ import annotations

from collections.abc import Mapping
from math import gcd
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import DefaultsConfig, StyleConfig, TemplateConfig
from bot.errors import InvalidRequest
from bot.prompt import FLAGS, clean_text, expand_permutations, format_request, parse_prompt
from bot.request import MAX_PROMPT_CHARS, AspectRatio, GenerationRequest, Quality

STYLES = {
    "anime": StyleConfig(
        prompt="anime key art of {prompt}",
        negative="blurry",
        aspect="2:3",
        count=2,
        steps=30,
        cfg=6.5,
        quality=Quality.HIGH,
        provider="openai",
    ),
    "plain": StyleConfig(),
}
TEMPLATES = {
    "portrait": TemplateConfig(text="portrait of {prompt}, {oil, watercolor} --ar 3:4 --seed 7 --no hands"),
    "castle": TemplateConfig(text="a castle on a hill --q low"),
    "nested": TemplateConfig(text="{prompt} --t castle"),
    "broken": TemplateConfig(text="{prompt} --ar 9:1"),
}
PROVIDERS = ("sketch", "openai")


def parse(text: str, **overrides: Any) -> list[GenerationRequest]:
    kwargs: dict[str, Any] = {
        "defaults": DefaultsConfig(),
        "styles": STYLES,
        "templates": TEMPLATES,
        "providers": PROVIDERS,
    }
    kwargs.update(overrides)
    return parse_prompt(text, **kwargs)


def one(text: str, **overrides: Any) -> GenerationRequest:
    requests = parse(text, **overrides)
    assert len(requests) == 1
    return requests[0]


def error(text: str, **overrides: Any) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse(text, **overrides)
    return info.value.message


# --- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "field", "expected"),
    [
        ("--ar 16:9", "aspect_ratio", AspectRatio(width=16, height=9)),
        ("--aspect 32:18", "aspect_ratio", AspectRatio(width=16, height=9)),
        ("--ar 16\uff1a9", "aspect_ratio", AspectRatio(width=16, height=9)),
        ("\u2014ar 2:3", "aspect_ratio", AspectRatio(width=2, height=3)),
        ("\u2013ar 3:2", "aspect_ratio", AspectRatio(width=3, height=2)),
        ("--AR 4:1", "aspect_ratio", AspectRatio(width=4, height=1)),
        ("--no dogs, birds", "negative_prompt", "dogs, birds"),
        ("--no dogs --no cats in hats", "negative_prompt", "dogs, cats in hats"),
        ("\u2014no text", "negative_prompt", "text"),
        ("--seed 0", "seed", 0),
        ("--seed 4294967295", "seed", 4294967295),
        ("--n 1", "count", 1),
        ("--count 3", "count", 3),
        ("--N 2", "count", 2),
        ("--style plain", "style", "plain"),
        ("--style ANIME", "style", "anime"),
        ("--provider openai", "provider", "openai"),
        ("--provider SKETCH", "provider", "sketch"),
        ("--q low", "quality", Quality.LOW),
        ("--quality HIGH", "quality", Quality.HIGH),
        ("--q .25", "quality", Quality.LOW),
        ("--q 0.25", "quality", Quality.LOW),
        ("--q .5", "quality", Quality.LOW),
        ("--q 1", "quality", Quality.MEDIUM),
        ("--q 2", "quality", Quality.HIGH),
        ("--steps 1", "steps", 1),
        ("--steps 150", "steps", 150),
        ("--cfg 0", "cfg", 0.0),
        ("--cfg 7.5", "cfg", 7.5),
        ("--cfg 30", "cfg", 30.0),
    ],
)
def test_each_flag_sets_its_field(flags: str, field: str, expected: object) -> None:
    request = one(f"a lighthouse at dusk {flags}")
    assert getattr(request, field) == expected
    assert request.prompt == "a lighthouse at dusk"


def test_flags_stand_anywhere_and_the_rest_is_the_prompt() -> None:
    request = one("--ar 16:9 a cat on --seed 3 a mat")
    assert (request.prompt, request.seed, str(request.aspect_ratio)) == ("a cat on a mat", 3, "16:9")


def test_no_takes_words_up_to_the_next_flag_only() -> None:
    request = one("a cat --no dogs on mats --ar 1:1 sleeping")
    assert (request.prompt, request.negative_prompt) == ("a cat sleeping", "dogs on mats")


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        ("--ar 5:1", ("--ar", "16:9", "4:1", "'5:1'")),
        ("--ar wide", ("--ar", "16:9", "4:1")),
        ("--ar 0:1", ("--ar", "16:9")),
        ("--ar 65:64", ("--ar", "16:9")),
        ("--ar 16/9", ("--ar", "16:9")),
        ("--aspect 1:9", ("--aspect", "4:1")),
        ("--n 0", ("--n", "1 to 4")),
        ("--n 5", ("--n", "1 to 4")),
        ("--count five", ("--count", "1 to 4")),
        ("--seed -1", ("--seed", "0 to 4294967295")),
        ("--seed 4294967296", ("--seed", "0 to 4294967295")),
        ("--seed 1.5", ("--seed", "0 to 4294967295")),
        ("--seed \u00b2", ("--seed", "0 to 4294967295")),
        ("--seed " + "9" * 5000, ("--seed", "0 to 4294967295")),
        ("--q ultra", ("--q", "low, medium or high", ".25")),
        ("--quality 3", ("--quality", "low, medium or high")),
        ("--steps 0", ("--steps", "1 to 150")),
        ("--steps 151", ("--steps", "1 to 150")),
        ("--cfg 31", ("--cfg", "0 to 30")),
        ("--cfg nan", ("--cfg", "0 to 30")),
        ("--cfg -1", ("--cfg", "0 to 30")),
        ("--cfg 1e999", ("--cfg", "0 to 30")),
    ],
)
def test_a_bad_value_names_the_flag_and_what_is_allowed(flags: str, fragments: tuple[str, ...]) -> None:
    message = error(f"a cat {flags}")
    for fragment in fragments:
        assert fragment in message
    assert len(message) < 300


@pytest.mark.parametrize("flag", [f for flag in FLAGS if not flag.switch for f in (flag.name, *flag.aliases)])
@pytest.mark.parametrize("after", ["", " --seed 1", " \u2014ar 1:1"])
def test_a_missing_value_names_the_flag_and_what_is_allowed(flag: str, after: str) -> None:
    message = error(f"a cat --{flag}{after}")
    expects = next(f.expects for f in FLAGS if flag in (f.name, *f.aliases))
    assert message == f"--{flag} needs a value: {expects}."


def test_override_is_a_switch_that_takes_no_value_and_round_trips() -> None:
    request = one("a gore scene --override --ar 16:9")
    assert request.override and request.prompt == "a gore scene" and str(request.aspect_ratio) == "16:9"
    assert one("--OVERRIDE a cat").override and not one("a cat").override
    assert "--override is given twice" in error("a --override --override")
    assert format_request(request).endswith("--override") and parse(format_request(request)) == [request]
    assert one(r"a \--override").prompt == "a --override" and not one(r"a \--override").override


def test_an_unknown_flag_is_named_with_the_allowed_flags() -> None:
    message = error("a cat --chaos 50")
    assert "'--chaos'" in message
    assert all(f"--{flag.name}" in message for flag in FLAGS)
    assert "\\--chaos" in message  # how to keep it as a word


def test_an_unknown_flag_close_to_a_real_one_gets_a_suggestion() -> None:
    assert "Did you mean --style?" in error("a cat --sytle anime")


def test_a_flag_given_twice_is_an_error_except_no() -> None:
    assert "--seed is given twice" in error("a --seed 1 --seed 2")
    assert "--aspect is given twice" in error("a --ar 1:1 --aspect 2:3")


def test_unknown_style_lists_the_styles() -> None:
    message = error("a cat --style pixel")
    assert "'pixel'" in message and "anime, plain" in message


def test_unknown_style_with_no_styles_says_there_are_none() -> None:
    assert "There are no styles" in error("a cat --style anime", styles={})


def test_unknown_provider_lists_the_configured_ones() -> None:
    message = error("a cat --provider dalle")
    assert "'dalle'" in message and "openai, sketch" in message


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "--ar 1:1", "--no dogs", "{,}", "\x00\x01"])
def test_an_empty_prompt_is_refused(text: str) -> None:
    assert "Your prompt is empty" in error(text)


def test_the_prompt_length_limit_is_enforced_and_named() -> None:
    assert one("a" * MAX_PROMPT_CHARS).prompt == "a" * MAX_PROMPT_CHARS
    assert "4,000" in error("a" * (MAX_PROMPT_CHARS + 1))
    assert "--no" in error("a cat --no " + "b" * (MAX_PROMPT_CHARS + 1))


def test_control_characters_are_stripped_and_whitespace_collapsed() -> None:
    request = one("a\x00 red\x07\n\n fox\tin\r\nthe \u00a0 snow\x1b --no\x0b  dogs ")
    assert request.prompt == "a red fox in the snow"
    assert request.negative_prompt == "dogs"
    assert clean_text(" a\x00b \n c\ud800 ") == "ab c"


@pytest.mark.parametrize(
    "text",
    ["a cat \u2014 sitting", "a well-lit room", "minus --5 degrees", "a --- rule", "an arrow -->", "a -ar b"],
)
def test_dashes_that_are_not_flags_stay_text(text: str) -> None:
    assert one(text).prompt == text


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        (r"a sign saying \--ar 16:9", "a sign saying --ar 16:9"),
        (r"\{not a group\}", "{not a group}"),
        (r"\{a, b\}", "{a, b}"),
        (r"back\\slash", r"back\slash"),
        (r"¯\_(ツ)_/¯", r"¯\_(ツ)_/¯"),
        (r"a \\{b, c}", "a \\b"),
    ],
)
def test_escapes_make_syntax_plain_text(text: str, prompt: str) -> None:
    assert parse(text)[0].prompt == prompt


# --- permutations -------------------------------------------------------------------------------


def test_permutations_are_the_cartesian_product_in_order() -> None:
    requests = parse("a {red, blue} car --ar {1:1, 16:9}")
    assert [(r.prompt, str(r.aspect_ratio)) for r in requests] == [
        ("a red car", "1:1"),
        ("a red car", "16:9"),
        ("a blue car", "1:1"),
        ("a blue car", "16:9"),
    ]


def test_permutations_over_the_cap_name_the_count_and_the_cap() -> None:
    message = error("a {b, c, d} {e, f}")
    assert "6" in message and "4" in message
    assert len(parse("a {b, c, d} {e, f}", max_permutations=6)) == 6
    assert "2" in error("a {b, c}", max_permutations=1)


def test_huge_permutation_counts_are_refused_without_expanding() -> None:
    assert "over a million" in error("{a, b} " * 200)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", ["plain text"]),
        ("a {single} b", ["a single b"]),
        ("{ a , b }", ["a", "b"]),
        ("x{a,}y", ["xay", "xy"]),
        ("{a, b {c, d}}", ["a", "b c", "b d"]),
        (r"{a\, b, c}", [r"a\, b", "c"]),
        (r"\{a, b\} {c, d}", [r"\{a, b\} c", r"\{a, b\} d"]),
        ("--ar {1:1, 2:3}", ["--ar 1:1", "--ar 2:3"]),
    ],
)
def test_expand_permutations_keeps_escapes(text: str, expected: list[str]) -> None:
    assert expand_permutations(text, 4) == expected


@pytest.mark.parametrize("text", ["a {b", "a b}", "{a, {b}", "}{", "{{a}}}"])
def test_unbalanced_braces_are_refused_with_the_escape_hint(text: str) -> None:
    message = error(text)
    assert "matching" in message and r"\{" in message


def test_deep_nesting_is_refused() -> None:
    assert "nested" in error("{" * 50 + "a" + "}" * 50)


def test_an_escaped_comma_stays_in_its_option() -> None:
    assert [r.prompt for r in parse(r"a {red\, white, blue} flag")] == ["a red, white flag", "a blue flag"]


# --- templates ----------------------------------------------------------------------------------


def test_a_template_wraps_the_words_and_its_flags_apply() -> None:
    requests = parse("--t portrait a cat, sitting")
    assert [r.prompt for r in requests] == [
        "portrait of a cat, sitting, oil",
        "portrait of a cat, sitting, watercolor",
    ]
    assert all((str(r.aspect_ratio), r.seed, r.negative_prompt) == ("3:4", 7, "hands") for r in requests)


def test_user_flags_override_template_flags() -> None:
    request = parse("a cat --template PORTRAIT --ar 16:9 --no text --seed 1")[0]
    assert (str(request.aspect_ratio), request.seed, request.negative_prompt) == ("16:9", 1, "text")


def test_a_template_without_placeholder_gets_the_words_appended() -> None:
    assert one("--t castle at night").prompt == "a castle on a hill at night"
    assert one("--t castle").quality is Quality.LOW


def test_template_permutations_count_toward_the_cap() -> None:
    assert "4" in error("{a, b, c} --t portrait")
    assert len(parse("{a, b} --t portrait")) == 4


def test_user_braces_stay_literal_inside_a_template() -> None:
    assert parse(r"a \{cat\} --t portrait")[0].prompt == "portrait of a {cat}, oil"


def test_template_problems_name_the_template() -> None:
    assert "template 'nested'" in error("a cat --t nested")
    message = error("a cat --t broken")
    assert "template 'broken'" in message and "--ar" in message


def test_unknown_template_lists_the_templates() -> None:
    message = error("a cat --t nope")
    assert "'nope'" in message and "broken, castle, nested, portrait" in message


# --- styles and defaults ------------------------------------------------------------------------


def test_a_style_fills_in_its_defaults_and_keeps_the_users_words() -> None:
    request = one("a cat --style anime")
    assert request.prompt == "a cat"  # the wrapper is applied later, by effective_prompt
    assert request.negative_prompt is None
    assert (str(request.aspect_ratio), request.count, request.steps, request.cfg) == ("2:3", 2, 30, 6.5)
    assert (request.quality, request.provider, request.style) == (Quality.HIGH, "openai", "anime")


@pytest.mark.parametrize(
    ("flags", "field", "expected"),
    [
        ("--ar 1:1", "aspect_ratio", AspectRatio(width=1, height=1)),
        ("--n 4", "count", 4),
        ("--steps 10", "steps", 10),
        ("--cfg 1", "cfg", 1.0),
        ("--q low", "quality", Quality.LOW),
        ("--provider sketch", "provider", "sketch"),
    ],
)
def test_a_style_never_overrides_the_users_flags(flags: str, field: str, expected: object) -> None:
    assert getattr(one(f"a cat --style anime {flags}"), field) == expected


def test_defaults_apply_last() -> None:
    defaults = DefaultsConfig(count=1, aspect="16:9", quality=Quality.MEDIUM)
    request = one("a cat", defaults=defaults)
    assert (request.count, str(request.aspect_ratio), request.quality) == (1, "16:9", Quality.MEDIUM)
    styled = one("a cat --style anime", defaults=defaults)
    assert (styled.count, str(styled.aspect_ratio), styled.quality) == (2, "2:3", Quality.HIGH)
    assert one("a cat").count == 4 and one("a cat").quality is None


def test_a_style_whose_provider_is_not_available_says_so() -> None:
    message = error("a cat --style anime", providers=("sketch",))
    assert "'anime'" in message and "'openai'" in message


# --- canonical text -----------------------------------------------------------------------------


def test_format_request_writes_every_set_field() -> None:
    request = GenerationRequest(
        prompt="a --ar {cat}",
        negative_prompt="dogs",
        aspect_ratio=AspectRatio(width=16, height=9),
        count=2,
        seed=5,
        style="anime",
        provider="openai",
        quality=Quality.HIGH,
        steps=20,
        cfg=7.5,
    )
    text = r"a \--ar \{cat\} --ar 16:9 --n 2 --seed 5 --style anime --provider openai --q high --steps 20"
    assert format_request(request) == text + " --cfg 7.5 --no dogs"
    assert format_request(GenerationRequest(prompt="x")) == "x --ar 1:1 --n 4"
    assert parse(format_request(request)) == [request]


def test_format_request_never_double_wraps_a_style() -> None:
    request = one("a cat --style anime")
    assert parse(format_request(request)) == [request]
    assert format_request(request).startswith("a cat ")


# --- properties ---------------------------------------------------------------------------------

_DASHES = ("--", "\u2014", "\u2013")
_FLAG_WORDS = [f"{dash}{f}" for flag in FLAGS for f in (flag.name, *flag.aliases) for dash in _DASHES]
_TOKENS = [
    *_FLAG_WORDS,
    "--", "---", "\u2014", "-", "--x", "--AR", "--t", "\\", "\\\\", "\\{", "\\}", "\\,", "\\--ar",
    "{", "}", ",",
    "{a,", "b}", "{prompt}", "16:9", "5:1", "2:3", "0", "1", "4", "150", ".25", "30", "7.5", "1e-5", "high",
    "anime", "ANIME", "plain", "portrait", "castle", "nested", "broken", "openai", "sketch", "\u00b2", "\x00",
    "\n", "\t", "\ud800", "é", "🦊", "\u200d", "\u00a0", "9" * 30,
]
_PHRASES = [
    "{a, b}", "{red, {green, blue}}", "{1:1, 2:3}", "--ar {1:1, 16:9}", "{--n 1, --seed 2}", "{x}", "{,}",
    "--ar 16:9", "\u2014ar 2:3", "--n 2", "--seed 42", "--style anime", "--style Plain", "--q .5", "--cfg 7",
    "--steps 20", "--provider openai", "--no dogs, cats", "--t portrait", "--t castle", "--t nested",
    "--template broken", "a fox", "\\{x\\}", "a\\\\b", "\\--seed",
]
_MIXED = st.lists(
    st.sampled_from(_TOKENS) | st.sampled_from(_PHRASES) | st.text(max_size=4), max_size=14
).flatmap(lambda tokens: st.sampled_from([" ", "", " , "]).map(lambda sep: sep.join(tokens)))


@settings(max_examples=300, deadline=None)
@given(st.text() | _MIXED)
def test_any_text_gives_valid_requests_or_a_friendly_error(text: str) -> None:
    try:
        requests = parse(text)
    except InvalidRequest as exc:
        assert exc.message and "Traceback" not in exc.message and len(exc.message) < 600
        return
    assert 1 <= len(requests) <= 4
    for request in requests:
        assert isinstance(request, GenerationRequest)
        assert clean_text(request.prompt) == request.prompt
        assert parse(format_request(request)) == [request]


_RATIOS = [
    AspectRatio(width=w, height=h)
    for w in range(1, 65)
    for h in range(1, 65)
    if gcd(w, h) == 1 and max(w, h) <= 4 * min(w, h)
]
_NO_SPACE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")).filter(
    lambda c: not c.isspace()
)
_WORD = st.text(_NO_SPACE, min_size=1, max_size=10) | st.sampled_from(
    [*_FLAG_WORDS, "{prompt}", "{", "}", ",", "\\", "\\--x", "a\\", "\\\u2014ar", "\\{"]
)
_TEXT = st.lists(_WORD.filter(lambda w: w.strip() == w and w.split() == [w]), min_size=1, max_size=8).map(
    " ".join
)
_NAME = st.text(_NO_SPACE, min_size=1, max_size=12) | st.sampled_from(["--x", "\u2014y", "{s}", "a,b", "\\"])


def _maybe(value: Any, keep: bool) -> Any:
    return value if keep else None


@st.composite
def _request_and_config(draw: st.DrawFn) -> tuple[GenerationRequest, dict[str, Any]]:
    optional = st.none()
    request = GenerationRequest(
        prompt=draw(_TEXT),
        negative_prompt=draw(optional | _TEXT),
        aspect_ratio=draw(st.sampled_from(_RATIOS)),
        count=draw(st.integers(1, 4)),
        seed=draw(optional | st.integers(0, 2**32 - 1)),
        style=draw(optional | _NAME),
        provider=draw(optional | _NAME),
        quality=draw(optional | st.sampled_from(Quality)),
        steps=draw(optional | st.integers(1, 150)),
        cfg=draw(optional | st.floats(0, 30)),
    )
    # The config may say anything about fields the request sets; where it leaves one unset,
    # the config must too, or parsing would fill it in (the documented round-trip rule).
    styles: Mapping[str, StyleConfig] = {}
    if request.style is not None:
        style = StyleConfig(
            prompt=draw(st.sampled_from(["{prompt}", "oil painting of {prompt}"])),
            negative=draw(optional | st.just("blurry")),
            aspect=str(draw(st.sampled_from(_RATIOS))),
            count=draw(st.integers(1, 4)),
            steps=_maybe(draw(st.integers(1, 150)), request.steps is not None),
            cfg=_maybe(draw(st.floats(0, 30)), request.cfg is not None),
            quality=_maybe(draw(st.sampled_from(Quality)), request.quality is not None),
            provider=_maybe(draw(_NAME), request.provider is not None),
        )
        styles = {request.style: style, "other": StyleConfig()}
    defaults = DefaultsConfig(
        count=draw(st.integers(1, 4)),
        aspect=str(draw(st.sampled_from(_RATIOS))),
        quality=_maybe(draw(st.sampled_from(Quality)), request.quality is not None),
    )
    providers = ["sketch"] + ([request.provider] if request.provider else [])
    return request, {"defaults": defaults, "styles": styles, "providers": providers}


@settings(max_examples=300, deadline=None)
@given(_request_and_config())
def test_format_then_parse_gives_the_same_request(case: tuple[GenerationRequest, dict[str, Any]]) -> None:
    request, config = case
    assert parse(format_request(request), **config) == [request]


def test_invisible_bidi_and_zero_width_characters_are_removed() -> None:
    from bot.prompt import clean_text

    # U+202E would show "txt.exe" as "exe.txt"; U+200B hides inside words.
    assert clean_text("a cat\u202e named\u200b bob\u2066") == "a cat named bob"
