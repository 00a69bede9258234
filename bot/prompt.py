r"""Prompt syntax: Midjourney-style flags, ``{a, b}`` permutations and templates.

The text is cleaned first: control characters other than tab, newline and carriage return are
removed (they are whitespace), and any run of whitespace counts as one space. Then:

* ``{a, b, c}`` anywhere gives one prompt per option; several groups give every combination,
  first group slowest. Groups may nest; options are trimmed; ``{a}`` is just ``a``.
* A token that starts with ``--`` (or the ``—``/``–`` autocorrect makes of it) and a letter is a
  flag from :data:`FLAGS`, in any case. ``--no`` takes every word up to the next flag, a switch
  (``--override``) none, every other flag exactly one token. Flags may stand anywhere; the other
  words are the prompt.
* ``\`` before one of ``\ { } , - — –`` makes that character plain text: ``\{`` is a brace,
  ``\--ar`` the word ``--ar``, ``\\`` one backslash. Any other backslash is itself.
* ``--template NAME`` parses the template's text instead, its ``{prompt}`` replaced by the
  user's words; the user's own flags win over the template's.

Precedence for each setting: the user's flag, the template's flag, the style's default, then
``[defaults]``. The style's wrapper and negative prompt are not applied here but by
:func:`bot.styles.effective_prompt`, so formatting and parsing again never wraps twice.

:func:`format_request` writes canonical text. ``parse_prompt(format_request(r), ...) == [r]`` for
every GENERATE request ``r`` (no source or init image, moderation's ``nsfw_allowed`` and ``flagged``
unset) whose ``prompt`` and ``negative_prompt`` are
unchanged by :func:`clean_text` (or the negative is ``None``), whose ``style`` and ``provider``
are single words (no whitespace or control characters), under a config that fills in nothing
``r`` leaves unset: the style's default steps, cfg, quality and provider, and
``[defaults].quality``, must be unset where ``r``'s are. Every request the parser returns
qualifies, under the config that produced it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from difflib import get_close_matches
from itertools import product
from math import gcd, prod
from types import MappingProxyType
from typing import Any

from bot.config import DefaultsConfig, StyleConfig, TemplateConfig
from bot.errors import InvalidRequest
from bot.request import MAX_COUNT, MAX_PROMPT_CHARS, MAX_SEED, AspectRatio, GenerationRequest, Quality
from bot.styles import expand_template, find_name, resolve_style, shorten


@dataclass(frozen=True)
class Flag:
    """One prompt flag: its name, aliases, and what it takes, for help text and error messages."""

    name: str
    aliases: tuple[str, ...]
    #: Placeholder for the value in help text.
    value: str
    #: What the value may be, completing "--name takes ...".
    expects: str
    help: str
    #: A switch takes no value: its presence turns it on.
    switch: bool = False


FLAGS: tuple[Flag, ...] = (
    Flag("ar", ("aspect",), "W:H", "a ratio like 16:9 (at most 4:1)", "aspect ratio"),
    Flag(
        "no", (), "TEXT", "the things to leave out, e.g. --no text, watermark",
        "negative prompt: every word up to the next flag; several --no are joined",
    ),
    Flag("n", ("count",), "N", "a number of images from 1 to 4", "how many images"),
    Flag("seed", (), "N", "a whole number from 0 to 4294967295", "fixed seed, for repeatable images"),
    Flag("style", (), "NAME", "the name of a style (see /styles)", "apply a style preset"),
    Flag("provider", (), "NAME", "the name of a provider set up here", "which image service draws it"),
    Flag("q", ("quality",), "low|medium|high", "low, medium or high (or .25, .5, 1, 2)", "quality"),
    Flag("steps", (), "N", "a whole number from 1 to 150", "sampling steps"),
    Flag("cfg", (), "X", "a number from 0 to 30", "how closely to follow the prompt"),
    Flag(
        "template", ("t",), "NAME", "the name of a template",
        "start from a saved template; your words fill its {prompt}",
    ),
    Flag(
        "override", (), "", "no value", "admins: draw it even if a moderation rule blocks it (logged)",
        switch=True,
    ),
)

_BY_NAME: Mapping[str, Flag] = MappingProxyType({n: f for f in FLAGS for n in (f.name, *f.aliases)})
_ESCAPABLE = frozenset("\\{},-\u2014\u2013")
_ESCAPABLE_CLASS = r"[\\{},\-\u2014\u2013]"
_ESCAPE_SEQUENCE = re.compile(rf"\\({_ESCAPABLE_CLASS})")
_NEEDS_ESCAPE = re.compile(rf"[{{}}]|\\(?={_ESCAPABLE_CLASS})")
_ESCAPE_OR_COMMA = re.compile(rf"\\{_ESCAPABLE_CLASS}|,")
_FLAG_TOKEN = re.compile(r"(?:--|\u2014|\u2013)([A-Za-z]\S*)")
# C0 and C1 controls except tab, newline and carriage return; lone surrogates cannot be stored as UTF-8.
# C0/C1 controls, lone surrogates, and the invisible bidi overrides and zero-width characters that
# can make an echoed prompt display as something else.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200d\u202a-\u202e\u2066-\u2069]")
# Bounded lengths keep int() and float() from ever raising (int() refuses over 4300 digits).
_INTEGER = re.compile(r"[0-9]{1,12}")
_NUMBER = re.compile(r"(?=.{1,40}$)(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
# Also the full-width and ratio colons that Japanese and Chinese keyboards type.
_RATIO = re.compile("([0-9]{1,6})[:\uff1a\u2236]([0-9]{1,6})")
# Midjourney's --q numbers.
_QUALITY_NUMBERS = MappingProxyType({0.25: Quality.LOW, 0.5: Quality.LOW, 1: Quality.MEDIUM, 2: Quality.HIGH})
_MAX_NESTING = 5
_BRACE_HINT = r"To use a brace as text, write \{ or \}."


def clean_text(text: str) -> str:
    """``text`` as the parser reads it: control characters removed, whitespace runs made one space."""
    return " ".join(_CONTROLS.sub("", text).split())


# --- permutations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    options: list[list[str | _Group]]


def expand_permutations(text: str, limit: int) -> list[str]:
    """One text per combination of the ``{a, b}`` groups in ``text``, in order.

    Escapes such as ``\\{`` are kept in the results, which are still prompt syntax. Raises
    :class:`InvalidRequest` for unbalanced braces or more than ``limit`` combinations.
    """
    parts = _parse_groups(text)
    _check_count(_count(parts), limit)
    return _expand(parts)


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        shown = f"{count:,}" if count < 10**6 else "over a million"
        raise InvalidRequest(
            f"That prompt makes {shown} variations; the limit is {limit}. Use fewer {{…}} options."
        )


def _parse_groups(text: str) -> list[str | _Group]:
    return _parse_sequence(text, 0, 0)[0]


def _parse_sequence(text: str, i: int, depth: int) -> tuple[list[str | _Group], int]:
    """Literal runs (escapes kept) and groups, up to the end or, inside a group, to ``,`` or ``}``."""
    parts: list[str | _Group] = []
    start = i
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in _ESCAPABLE:
            i += 2
        elif char == "{":
            parts.append(text[start:i])
            group, i = _parse_group(text, i + 1, depth + 1)
            parts.append(group)
            start = i
        elif char in ",}" and depth:
            break
        elif char == "}":
            raise InvalidRequest(f"There is a }} without a matching {{. {_BRACE_HINT}")
        else:
            i += 1
    parts.append(text[start:i])
    return parts, i


def _parse_group(text: str, i: int, depth: int) -> tuple[_Group, int]:
    if depth > _MAX_NESTING:
        raise InvalidRequest(f"Option groups can be nested at most {_MAX_NESTING} deep.")
    options = []
    while True:
        option, i = _parse_sequence(text, i, depth)
        options.append(option)
        if i >= len(text):
            raise InvalidRequest(f"There is a {{ without a matching }}. {_BRACE_HINT}")
        i += 1
        if text[i - 1] == "}":
            return _Group(options), i


def _count(parts: list[str | _Group]) -> int:
    return prod(sum(_count(option) for option in p.options) for p in parts if isinstance(p, _Group))


def _expand(parts: list[str | _Group]) -> list[str]:
    choices = [
        [p] if isinstance(p, str) else [text.strip() for option in p.options for text in _expand(option)]
        for p in parts
    ]
    return ["".join(combination) for combination in product(*choices)]


# --- formatting ---------------------------------------------------------------------------------


def format_request(request: GenerationRequest) -> str:
    """Canonical prompt text for ``request``: the prompt, then every set field as a flag.

    Source, strength and init-image fields (variations, upscales) have no flags and are left out.
    """
    parts = [_escape_words(request.prompt), f"--ar {request.aspect_ratio}", f"--n {request.count}"]
    if request.seed is not None:
        parts.append(f"--seed {request.seed}")
    if request.style and request.style.split():
        parts.append(f"--style {_escape_words(request.style)}")
    if request.provider and request.provider.split():
        parts.append(f"--provider {_escape_words(request.provider)}")
    if request.quality is not None:
        parts.append(f"--q {request.quality.value}")
    if request.steps is not None:
        parts.append(f"--steps {request.steps}")
    if request.cfg is not None:
        cfg = request.cfg
        parts.append(f"--cfg {int(cfg) if cfg.is_integer() else repr(cfg)}")
    if request.override:
        parts.append("--override")
    # Last, because --no takes every word up to the next flag.
    if request.negative_prompt and request.negative_prompt.split():
        parts.append(f"--no {_escape_words(request.negative_prompt)}")
    return " ".join(parts)


def _escape_words(text: str) -> str:
    words = (_NEEDS_ESCAPE.sub(lambda m: "\\" + m[0], word) for word in text.split())
    return " ".join("\\" + word if _FLAG_TOKEN.fullmatch(word) else word for word in words)


def _unescape(token: str) -> str:
    return _ESCAPE_SEQUENCE.sub(lambda m: m[1], token)


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    defaults: DefaultsConfig
    styles: Mapping[str, StyleConfig]
    templates: Mapping[str, TemplateConfig]
    providers: Collection[str]


@dataclass(frozen=True)
class _Params:
    """Settings from one source (user, template, style); ``None`` means not given there."""

    aspect_ratio: AspectRatio | None = None
    count: int | None = None
    seed: int | None = None
    style: str | None = None
    provider: str | None = None
    quality: Quality | None = None
    steps: int | None = None
    cfg: float | None = None
    negative_prompt: str | None = None
    override: bool | None = None

    def over(self, base: _Params) -> _Params:
        """These settings where given, ``base``'s elsewhere."""
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **given)


@dataclass(frozen=True)
class _Scan:
    #: Prompt tokens, escapes kept (they may go into a template and be parsed again).
    words: list[str]
    #: Flag name -> (the flag as typed, its value with escapes resolved).
    given: dict[str, tuple[str, str]]


def parse_prompt(
    text: str,
    *,
    defaults: DefaultsConfig,
    styles: Mapping[str, StyleConfig],
    templates: Mapping[str, TemplateConfig],
    providers: Collection[str],
    max_permutations: int = 4,
) -> list[GenerationRequest]:
    """Turn ``/imagine`` text into 1..``max_permutations`` requests (one per permutation).

    ``styles`` is the merged mapping (:func:`bot.styles.merge_styles`); ``providers`` the names
    a user may pick. Raises only :class:`InvalidRequest`, with a message for the chat user.
    """
    ctx = _Context(defaults, styles, templates, providers)
    pending = []
    for variant in expand_permutations(_CONTROLS.sub("", text), max_permutations):
        scan = _scan(variant)
        template = scan.given.get("template")
        pending.append(_Pending(scan.words, _interpret(scan.given, ctx), template[1] if template else None))
    for item in pending:
        if item.template is not None:
            # Escaped commas stay words when {prompt} sits inside one of the template's groups.
            rest = _ESCAPE_OR_COMMA.sub(lambda m: m[0] if len(m[0]) == 2 else "\\,", " ".join(item.words))
            text = expand_template(item.template, rest, templates)
            with _blaming(item.template):
                item.groups = _parse_groups(_CONTROLS.sub("", text))
    _check_count(sum(1 if p.groups is None else _count(p.groups) for p in pending), max_permutations)
    return [request for item in pending for request in _requests(item, ctx)]


@dataclass
class _Pending:
    """One permutation of the user's text, before its template (if any) is applied."""

    words: list[str]
    params: _Params
    template: str | None
    #: The template's text with the user's words in it, as option groups.
    groups: list[str | _Group] | None = None


def _requests(item: _Pending, ctx: _Context) -> list[GenerationRequest]:
    if item.template is None or item.groups is None:
        return [_finish(item.words, item.params, ctx)]
    requests = []
    for variant in _expand(item.groups):
        with _blaming(item.template):
            scan = _scan(variant)
            if "template" in scan.given:
                raise InvalidRequest("A template can't use another template.")
            from_template = _interpret(scan.given, ctx)
        requests.append(_finish(scan.words, item.params.over(from_template), ctx))
    return requests


@contextmanager
def _blaming(template: str) -> Iterator[None]:
    """Errors in a template's own text name the template, so the user knows it isn't their typo."""
    try:
        yield
    except InvalidRequest as exc:
        raise InvalidRequest(f"The template '{shorten(template)}' has a problem: {exc.message}") from exc


def _scan(text: str) -> _Scan:
    tokens = text.split()
    words: list[str] = []
    given: dict[str, tuple[str, str]] = {}
    negatives: list[str] = []
    i = 0
    while i < len(tokens):
        match = _FLAG_TOKEN.fullmatch(tokens[i])
        if match is None:
            words.append(tokens[i])
            i += 1
            continue
        flag = _flag_named(tokens[i], match[1].lower())
        typed = f"--{match[1].lower()}"
        if flag.switch:
            if flag.name in given:
                raise InvalidRequest(f"{typed} is given twice; give it once.")
            given[flag.name] = (typed, "")
            i += 1
            continue
        # --no takes every word up to the next flag, the others one token.
        end, stop = i + 1, len(tokens) if flag.name == "no" else min(i + 2, len(tokens))
        while end < stop and not _FLAG_TOKEN.fullmatch(tokens[end]):
            end += 1
        values = [_unescape(token) for token in tokens[i + 1 : end]]
        if not values:
            raise InvalidRequest(f"{typed} needs a value: {flag.expects}.")
        if flag.name == "no":
            negatives.append(" ".join(values))
        elif flag.name in given:
            raise InvalidRequest(f"{typed} is given twice; give it once.")
        else:
            given[flag.name] = (typed, values[0])
        i = end
    if negatives:
        given["no"] = ("--no", ", ".join(negatives))
    return _Scan(words, given)


def _flag_named(token: str, name: str) -> Flag:
    flag = _BY_NAME.get(name)
    if flag is not None:
        return flag
    message = f"Unknown flag '{shorten(token)}'. Flags: {', '.join('--' + f.name for f in FLAGS)}."
    close = get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6) if len(name) <= 40 else []
    if close:
        message += f" Did you mean --{close[0]}?"
    raise InvalidRequest(message + f" To use it as a word, write \\{shorten(token)}.")


def _integer_in(low: int, high: int) -> Callable[[str], int | None]:
    def convert(text: str) -> int | None:
        value = int(text) if _INTEGER.fullmatch(text) else None
        return value if value is not None and low <= value <= high else None

    return convert


def _number(text: str) -> float | None:
    value = float(text) if _NUMBER.fullmatch(text) else None
    return value if value is not None and 0 <= value <= 30 else None


def _ratio(text: str) -> AspectRatio | None:
    match = _RATIO.fullmatch(text)
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if not width or not height:
        return None
    divisor = gcd(width, height)
    width, height = width // divisor, height // divisor
    if max(width, height) > 4 * min(width, height) or max(width, height) > 64:
        return None
    return AspectRatio(width=width, height=height)


def _quality(text: str) -> Quality | None:
    if text.lower() in {q.value for q in Quality}:
        return Quality(text.lower())
    return _QUALITY_NUMBERS.get(float(text)) if _NUMBER.fullmatch(text) else None


_CONVERTERS: Mapping[str, tuple[str, Callable[[str], object]]] = MappingProxyType({
    "ar": ("aspect_ratio", _ratio),
    "n": ("count", _integer_in(1, MAX_COUNT)),
    "seed": ("seed", _integer_in(0, MAX_SEED)),
    "q": ("quality", _quality),
    "steps": ("steps", _integer_in(1, 150)),
    "cfg": ("cfg", _number),
})


def _interpret(given: Mapping[str, tuple[str, str]], ctx: _Context) -> _Params:
    values: dict[str, Any] = {}
    for name, (typed, text) in given.items():
        if name == "style":
            values["style"] = resolve_style(text, ctx.styles)[0]
        elif name == "provider":
            values["provider"] = find_name(text, ctx.providers, kind="provider")
        elif name == "no":
            values["negative_prompt"] = text
        elif name == "override":
            values["override"] = True
        elif name in _CONVERTERS:
            field, convert = _CONVERTERS[name]
            values[field] = convert(text)
            if values[field] is None:
                raise InvalidRequest(f"{typed} takes {_BY_NAME[name].expects}, not '{shorten(text)}'.")
    return _Params(**values)


def _finish(words: list[str], params: _Params, ctx: _Context) -> GenerationRequest:
    prompt = " ".join(_unescape(word) for word in words)
    if not prompt:
        raise InvalidRequest("Your prompt is empty: describe the image, then any flags: a fox --ar 16:9.")
    for label, text in (("Your prompt", prompt), ("The --no text", params.negative_prompt or "")):
        if len(text) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"{label} is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}."
            )
    try:
        # Config values were validated when loaded; a ValueError here is a bug, still shown politely.
        if params.style is not None:
            params = params.over(_style_defaults(params.style, params, ctx))
        values = {f.name: getattr(params, f.name) for f in fields(params)}
        values["aspect_ratio"] = params.aspect_ratio or AspectRatio.parse(ctx.defaults.aspect)
        values["count"] = params.count or ctx.defaults.count
        values["quality"] = params.quality or ctx.defaults.quality
        values["override"] = bool(params.override)
        return GenerationRequest(prompt=prompt, **values)
    except ValueError as exc:
        raise InvalidRequest("That combination of settings isn't valid; please check the flags.") from exc


def _style_defaults(name: str, params: _Params, ctx: _Context) -> _Params:
    style = ctx.styles[name]
    if params.provider is None and style.provider is not None and style.provider not in ctx.providers:
        raise InvalidRequest(
            f"The style '{shorten(name)}' uses the provider '{style.provider}', which isn't available here."
        )
    return _Params(
        aspect_ratio=AspectRatio.parse(style.aspect) if style.aspect else None,
        count=style.count,
        quality=style.quality,
        steps=style.steps,
        cfg=style.cfg,
        provider=style.provider,
    )
