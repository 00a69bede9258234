"""Style presets and templates: merging layers, listing, applying to a request, expanding."""

from __future__ import annotations

import pytest

from bot.config import DefaultsConfig, StyleConfig, TemplateConfig
from bot.errors import InvalidRequest
from bot.prompt import format_request, parse_prompt
from bot.request import GenerationRequest, Quality
from bot.styles import (
    EffectivePrompt,
    describe_styles,
    effective_prompt,
    expand_template,
    find_name,
    merge_styles,
    resolve_style,
)

ANIME = StyleConfig(prompt="anime key art of {prompt}, cel shading", negative="blurry, lowres", aspect="2:3")
NOIR = StyleConfig(prompt="{prompt}", description="Black and white\nfilm noir", steps=40)


# --- merging ------------------------------------------------------------------------------------


def test_later_layers_win_config_then_server_then_user() -> None:
    config = {"anime": ANIME, "noir": NOIR}
    server = {"noir": StyleConfig(description="server noir")}
    user = {"mine": StyleConfig(description="my own")}
    merged = merge_styles(config, server, user)
    assert merged == {"anime": ANIME, "noir": server["noir"], "mine": user["mine"]}


def test_a_later_layer_replaces_a_style_of_the_same_name_in_any_case_and_whole() -> None:
    user_anime = StyleConfig(description="mine")
    merged = merge_styles({"Anime": ANIME}, {"anime": user_anime})
    assert merged == {"anime": user_anime}
    assert merged["anime"].negative is None  # replaced whole, not merged field by field


def test_merging_nothing_gives_nothing_and_never_changes_the_layers() -> None:
    layer = {"anime": ANIME}
    assert merge_styles() == {}
    merge_styles(layer, {"anime": NOIR})
    assert layer == {"anime": ANIME}


# --- listing ------------------------------------------------------------------------------------


def test_describe_styles_is_sorted_ignoring_case_with_one_line_each() -> None:
    styles = {"noir": NOIR, "Anime": ANIME, "zen": StyleConfig(description="x" * 300)}
    described = describe_styles(styles)
    assert [name for name, _ in described] == ["Anime", "noir", "zen"]
    assert all("\n" not in text and len(text) <= 100 for _, text in described)
    assert described[1][1] == "Black and white film noir (--steps 40)"
    assert described[2][1].endswith("…")


def test_a_style_without_description_is_described_by_its_wrapper_and_settings() -> None:
    [(_, text)] = describe_styles({"anime": ANIME})
    assert text == "anime key art of …, cel shading (--ar 2:3)"


def test_describe_no_styles() -> None:
    assert describe_styles({}) == []


# --- lookup -------------------------------------------------------------------------------------


def test_styles_are_found_ignoring_case_exact_spelling_first() -> None:
    styles = {"Anime": ANIME, "anime": NOIR}
    assert resolve_style("anime", styles) == ("anime", NOIR)
    assert resolve_style("ANIME", {"Anime": ANIME}) == ("Anime", ANIME)


def test_an_unknown_name_lists_what_exists_and_suggests_a_close_one() -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_style("anme", {"anime": ANIME, "noir": NOIR})
    assert info.value.message == (
        "There is no style called 'anme'. Available styles: anime, noir. Did you mean 'anime'?"
    )


def test_a_long_list_of_names_is_cut_short() -> None:
    with pytest.raises(InvalidRequest) as info:
        find_name("nope", [f"s{i:02}" for i in range(30)], kind="provider")
    assert "s19 and 10 more." in info.value.message and "s20" not in info.value.message


def test_an_unknown_name_with_none_configured_says_so() -> None:
    with pytest.raises(InvalidRequest, match="There are no templates set up here"):
        find_name("x", [], kind="template")


def test_a_pasted_paragraph_as_a_name_is_echoed_short() -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_style("y" * 5000, {"anime": ANIME})
    assert len(info.value.message) < 200


# --- applying a style ---------------------------------------------------------------------------


def test_without_a_style_the_prompt_goes_as_it_is() -> None:
    request = GenerationRequest(prompt="a fox", negative_prompt="dogs")
    assert effective_prompt(request, {"anime": ANIME}) == EffectivePrompt("a fox", "dogs")
    assert effective_prompt(GenerationRequest(prompt="a fox", negative_prompt=""), {}) == EffectivePrompt(
        "a fox", None
    )


def test_a_style_wraps_the_prompt_and_adds_its_negative_after_the_users() -> None:
    request = GenerationRequest(prompt="a fox", negative_prompt="dogs", style="anime")
    assert effective_prompt(request, {"anime": ANIME}) == EffectivePrompt(
        "anime key art of a fox, cel shading", "dogs, blurry, lowres"
    )
    alone = GenerationRequest(prompt="a fox", style="anime")
    assert effective_prompt(alone, {"anime": ANIME}).negative_prompt == "blurry, lowres"
    plain = GenerationRequest(prompt="a fox", style="noir")
    assert effective_prompt(plain, {"noir": NOIR}) == EffectivePrompt("a fox", None)


def test_braces_in_the_users_words_are_not_expanded_again() -> None:
    request = GenerationRequest(prompt="a {prompt} sign", style="anime")
    wrapped = effective_prompt(request, {"anime": ANIME}).prompt
    assert wrapped == "anime key art of a {prompt} sign, cel shading"


def test_a_style_that_no_longer_exists_is_an_error_not_silently_dropped() -> None:
    with pytest.raises(InvalidRequest, match="no style called 'gone'"):
        effective_prompt(GenerationRequest(prompt="a fox", style="gone"), {"anime": ANIME})


def test_parse_format_parse_then_apply_wraps_exactly_once() -> None:
    def parse(text: str) -> list[GenerationRequest]:
        defaults, styles = DefaultsConfig(), {"anime": ANIME}
        return parse_prompt(text, defaults=defaults, styles=styles, templates={}, providers=("sketch",))

    [request] = parse("a fox --style anime --no dogs")
    [again] = parse(format_request(request))
    assert effective_prompt(again, {"anime": ANIME}) == EffectivePrompt(
        "anime key art of a fox, cel shading", "dogs, blurry, lowres"
    )
    assert again.quality is None and again.steps is None


# --- templates ----------------------------------------------------------------------------------

TEMPLATES = {
    "portrait": TemplateConfig(text="portrait of {prompt}, soft light --ar 3:4"),
    "twice": TemplateConfig(text="{prompt} and {prompt}"),
    "castle": TemplateConfig(text="a castle --q high"),
}


@pytest.mark.parametrize(
    ("name", "rest", "expected"),
    [
        ("portrait", "a cat", "portrait of a cat, soft light --ar 3:4"),
        ("PORTRAIT", "a cat", "portrait of a cat, soft light --ar 3:4"),
        ("twice", "x", "x and x"),
        ("castle", "at night", "a castle --q high at night"),
        ("castle", "", "a castle --q high"),
        ("castle", "   ", "a castle --q high"),
        ("portrait", "", "portrait of , soft light --ar 3:4"),
    ],
)
def test_expand_template(name: str, rest: str, expected: str) -> None:
    assert expand_template(name, rest, TEMPLATES) == expected


def test_an_unknown_template_lists_the_templates() -> None:
    with pytest.raises(InvalidRequest) as info:
        expand_template("potrait", "a cat", TEMPLATES)
    assert "castle, portrait, twice" in info.value.message
    assert "Did you mean 'portrait'?" in info.value.message


def test_a_templates_flags_reach_the_request() -> None:
    [request] = parse_prompt(
        "--t castle at night",
        defaults=DefaultsConfig(),
        styles={},
        templates=TEMPLATES,
        providers=["sketch"],
    )
    assert (request.prompt, request.quality) == ("a castle at night", Quality.HIGH)
