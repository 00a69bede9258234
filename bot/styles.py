"""Style presets and prompt templates.

Styles come in layers (the config file, then a server's own, then a user's own) that
:func:`merge_styles` combines. A request keeps the user's words and the style's *name*; the
style's wrapper and negative prompt are applied only when the job goes to a provider
(:func:`effective_prompt`), so a request can be shown, stored and parsed again without being
wrapped twice. The style's default parameters are applied earlier, by :mod:`bot.prompt`.

A template is a saved prompt with flags; ``{prompt}`` in it takes the words the user adds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches

from bot.config import StyleConfig, TemplateConfig
from bot.errors import InvalidRequest
from bot.request import GenerationRequest

PLACEHOLDER = "{prompt}"
#: Longer lists of names are cut short in error messages; chat users scroll poorly.
_MAX_LISTED = 20
_DESCRIPTION_CHARS = 100


@dataclass(frozen=True)
class EffectivePrompt:
    """The prompt and negative prompt actually sent to a provider, with the style applied."""

    prompt: str
    negative_prompt: str | None


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters, for echoing user input back in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def find_name(name: str, names: Iterable[str], *, kind: str) -> str:
    """The configured spelling of ``name`` among ``names``: exact, else ignoring case.

    ``kind`` ("style", "template", "provider") words the :class:`InvalidRequest` raised when
    nothing matches; the message lists what is available.
    """
    known = list(names)
    if name in known:
        return name
    by_fold = {n.casefold(): n for n in known}
    hit = by_fold.get(name.casefold())
    if hit is not None:
        return hit
    raise InvalidRequest(_unknown(kind, name, known))


def _unknown(kind: str, name: str, known: list[str]) -> str:
    if not known:
        return f"There are no {kind}s set up here, so '{shorten(name)}' can't be used."
    listed = sorted(known, key=lambda n: (n.casefold(), n))
    shown = ", ".join(listed[:_MAX_LISTED])
    if len(listed) > _MAX_LISTED:
        shown += f" and {len(listed) - _MAX_LISTED} more"
    message = f"There is no {kind} called '{shorten(name)}'. Available {kind}s: {shown}."
    # difflib is quadratic in the lengths; a pasted paragraph gets no suggestion.
    if len(name) <= 40:
        close = get_close_matches(name.casefold(), [n.casefold() for n in listed], n=1, cutoff=0.7)
        if close:
            guess = next(n for n in listed if n.casefold() == close[0])
            message += f" Did you mean '{guess}'?"
    return message


def resolve_style(name: str, styles: Mapping[str, StyleConfig]) -> tuple[str, StyleConfig]:
    """The style called ``name`` (case-insensitive) and its configured name."""
    key = find_name(name, styles, kind="style")
    return key, styles[key]


def resolve_template(name: str, templates: Mapping[str, TemplateConfig]) -> tuple[str, TemplateConfig]:
    """The template called ``name`` (case-insensitive) and its configured name."""
    key = find_name(name, templates, kind="template")
    return key, templates[key]


def merge_styles(*layers: Mapping[str, StyleConfig]) -> dict[str, StyleConfig]:
    """Combine style layers; a later layer's style replaces an earlier one of the same name.

    Names are compared ignoring case (users type them that way), so a user's ``anime`` replaces
    the server's ``Anime``; the later layer's spelling is kept. A style is replaced whole, never
    merged field by field, so what a user sees in their own style is all it does.
    """
    merged: dict[str, StyleConfig] = {}
    by_fold: dict[str, str] = {}
    for layer in layers:
        for name, style in layer.items():
            old = by_fold.get(name.casefold())
            if old is not None:
                del merged[old]
            merged[name] = style
            by_fold[name.casefold()] = name
    return merged


def describe_styles(styles: Mapping[str, StyleConfig]) -> list[tuple[str, str]]:
    """``(name, one-line description)`` for each style, sorted by name ignoring case, for ``/styles``."""
    return [(name, _describe(styles[name])) for name in sorted(styles, key=lambda n: (n.casefold(), n))]


def _describe(style: StyleConfig) -> str:
    text = " ".join(style.description.split())
    if not text:
        text = " ".join(style.prompt.replace(PLACEHOLDER, "…").split())
    settings = [
        f"--{flag} {value}"
        for flag, value in (
            ("ar", style.aspect),
            ("n", style.count),
            ("q", style.quality.value if style.quality else None),
            ("steps", style.steps),
            ("cfg", style.cfg),
            ("provider", style.provider),
        )
        if value is not None
    ]
    if settings:
        text += f" ({', '.join(settings)})"
    return shorten(text, _DESCRIPTION_CHARS)


def effective_prompt(request: GenerationRequest, styles: Mapping[str, StyleConfig]) -> EffectivePrompt:
    """What to send the provider: the style's wrapper around the prompt, negatives joined.

    The user's negative prompt comes first, then the style's. Raises :class:`InvalidRequest`
    when the request names a style that no longer exists (a job queued before a style was
    deleted), rather than silently dropping it.
    """
    negative = _clean(request.negative_prompt)
    if request.style is None:
        return EffectivePrompt(prompt=request.prompt, negative_prompt=negative)
    _, style = resolve_style(request.style, styles)
    # str.replace does not rescan what it inserts, so braces in the user's words stay as typed.
    prompt = " ".join(style.prompt.replace(PLACEHOLDER, request.prompt).split())
    negatives = [n for n in (negative, _clean(style.negative)) if n]
    return EffectivePrompt(prompt=prompt, negative_prompt=", ".join(negatives) or None)


def _clean(text: str | None) -> str | None:
    return (" ".join(text.split()) or None) if text else None


def expand_template(name: str, rest: str, templates: Mapping[str, TemplateConfig]) -> str:
    """The text of template ``name`` with every ``{prompt}`` replaced by ``rest``.

    Without a placeholder, ``rest`` is appended after a space. The result is prompt text with
    flags, to be parsed; ``rest`` is inserted verbatim, so callers pass it in prompt syntax.
    """
    _, template = resolve_template(name, templates)
    if PLACEHOLDER in template.text:
        return template.text.replace(PLACEHOLDER, rest)
    return f"{template.text} {rest}" if rest.strip() else template.text
