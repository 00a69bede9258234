"""Fuzzing the two parsers that read text people type: ``/imagine`` prompts and the config file.

Whatever comes in, the prompt parser returns valid requests or raises ``InvalidRequest`` with a
short sentence, quickly; the config loader returns a ``Config`` or raises ``ConfigError`` naming
the problem, never another exception (a traceback instead of a message), and never echoes a
token it was given.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.config import Config, DefaultsConfig, StyleConfig, TemplateConfig, config_from_dict, load_config
from bot.errors import ConfigError, InvalidRequest
from bot.prompt import FLAGS, parse_prompt
from bot.request import MAX_PROMPT_CHARS, GenerationRequest
from providers.registry import build_providers

# --- the prompt parser --------------------------------------------------------------------------

_FLAG_NAMES = [n for f in FLAGS for n in (f.name, *f.aliases)] + ["nope", "AR", "n0", "x" * 60]
_DASHES = ["--", "\u2014", "\u2013", "-", "\\--"]
_VALUES = [
    "16:9", "1:1", "4:1", "5:1", "0:0", "99999999:1", "\uff11\uff16\uff1a\uff19", "2", "0", "-1", "4", "5",
    "4294967295", "4294967296", "9" * 5000, "1e308", "nan", "inf", ".5", "1.", "low", "HIGH", "turbo",
    "photo", "cinematic", "sketch", "{a,b}", "{", "}", "\\{", "\\", ",", "",
]
_WORDS = st.sampled_from([
    "a", "fox", "{a, b}", "{x,{y,z}}", "{", "}", "\\}", "\\\\", ",", "\\,", "@everyone", "<@123>", "**b**",
    "\x00", "\x1b[31m", "\u202e", "\U0001f98a", "\u0301", " ", "\n", "\t", "{prompt}", "--", "\u2014\u2014",
])
_TOKEN = st.one_of(
    _WORDS,
    st.text(max_size=12),
    st.builds(lambda d, f, v: f"{d}{f} {v}", st.sampled_from(_DASHES), st.sampled_from(_FLAG_NAMES),
              st.sampled_from(_VALUES)),
    st.builds(lambda n: "{" + ",".join("o" * i for i in range(n)) + "}", st.integers(0, 9)),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "{", "}", "\\", "-", "\u00e9"]), st.integers(0, 6000)),
)
PROMPT_TEXT = st.lists(_TOKEN, max_size=30).map(" ".join)

STYLES = {
    "photo": StyleConfig(prompt="a photo of {prompt}", negative="blurry", aspect="3:2", steps=30),
    "cinematic": StyleConfig(prompt="{prompt}, film still", provider="sketch", count=2),
    "ghost": StyleConfig(prompt="{prompt}", provider="gone"),
}
TEMPLATES = {
    "t": TemplateConfig(text="{prompt} --ar 16:9 --n 2"),
    "perm": TemplateConfig(text="{a,b,c} {prompt}"),
    "bad": TemplateConfig(text="{prompt} --ar nope"),
    "loop": TemplateConfig(text="{prompt} --template t"),
    "brace": TemplateConfig(text="{prompt"),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=PROMPT_TEXT, limit=st.integers(1, 16))
def test_any_prompt_gives_valid_requests_or_one_short_sentence(text: str, limit: int) -> None:
    began = time.perf_counter()
    try:
        requests = parse_prompt(text, defaults=DefaultsConfig(), styles=STYLES, templates=TEMPLATES,
                                providers=["sketch", "openai"], max_permutations=limit)
    except InvalidRequest as exc:
        message = exc.message
        assert message and len(message) <= 1000, message
        assert "Traceback" not in message and "Error(" not in message
        assert "\x00" not in message and "\x1b" not in message
    else:
        assert 1 <= len(requests) <= limit
        for request in requests:
            assert GenerationRequest.model_validate(request.model_dump()) == request
            assert 0 < len(request.prompt) <= MAX_PROMPT_CHARS
            assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in request.prompt)
    assert time.perf_counter() - began < 2.0, "a hostile prompt costs milliseconds, not seconds"


# --- the config loader --------------------------------------------------------------------------

SECRET = "SECRETtokenVALUE-0123456789abcdef"
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.sampled_from(["", "sketch", "openai", "${HOME}", "${IMAGINEBOT_NOT_SET}", "${", "$${X}", "16:9", "99:1",
                     "../../etc", "\x00", "full", "normal", "thread", "x" * 300, "{prompt}", "1e9"]),
    st.text(max_size=20),
)
_VALUE = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_SECTIONS = {
    "storage": ["dir", "synchronous", "zzz"],
    "web": ["enabled", "host", "port", "public_url", "link_secret", "link_ttl_hours"],
    "discord": ["token", "api_base_url", "dev_guild_ids", "thread_mode", "shard_count", "shard_ids",
                "upload_limit_mb"],
    "slack": ["bot_token", "app_token", "signing_secret"],
    "routing": ["default", "fallback"],
    "limits": ["per_user_per_minute", "burst", "daily_images_per_user", "roles", "max_queue_size"],
    "queue": ["job_timeout_seconds", "max_attempts", "retry_base_seconds", "max_permutations"],
    "defaults": ["count", "aspect", "quality"],
    "styles": ["photo", "x y", ""],
    "templates": ["t", ""],
    "providers": ["sketch", "openai", "other"],
    "nonsense": ["x"],
}
_PROVIDER_KEYS = ["type", "delay", "size", "concurrency", "api_key", "model", "base_url", "timeout_seconds",
                  "sizes", "partial_images", "prices", "circuit_failures", "preview_frames", "typo"]


@st.composite
def _raw_config(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(_SECTIONS)), max_size=5, unique=True)):
        body: dict[str, Any] = {}
        for key in draw(st.lists(st.sampled_from(_SECTIONS[section]), max_size=4, unique=True)):
            if section == "providers":
                body[key] = {k: draw(_VALUE) for k in draw(st.lists(st.sampled_from(_PROVIDER_KEYS), max_size=5,
                                                                     unique=True))}
                if draw(st.booleans()):
                    body[key]["type"] = draw(st.sampled_from(["sketch", "openai", "nope", 3]))
                if draw(st.booleans()):
                    body[key]["api_key"] = SECRET
            elif key in ("token", "bot_token", "app_token", "signing_secret", "link_secret"):
                body[key] = draw(st.sampled_from([SECRET, 42, [SECRET], {"v": SECRET}]))
            else:
                body[key] = draw(_VALUE)
        raw[section] = body if draw(st.integers(0, 9)) else draw(_VALUE)
    return raw


def _built_or_config_error(raw: dict[str, Any]) -> None:
    try:
        config = config_from_dict(raw, environ={"HOME": "/home/bot"})
    except ConfigError as exc:
        assert exc.args and isinstance(exc.args[0], str) and exc.args[0]
        assert SECRET not in str(exc) and SECRET[:8] not in str(exc), "a token was echoed in a config error"
        return
    assert isinstance(config, Config)
    try:
        providers = build_providers(config.providers, clock=FakeClock())
    except ConfigError as exc:
        assert SECRET not in str(exc) and SECRET[:8] not in str(exc)
        return
    for provider in providers.values():
        asyncio.run(provider.aclose())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_raw_config())
def test_any_config_mapping_loads_or_names_its_problem(raw: dict[str, Any]) -> None:
    _built_or_config_error(raw)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


_FILE_BODY = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(
        lambda section, key, value: f"[{section}]\n{key} = {_toml_value(value)}\n".encode(),
        st.sampled_from(sorted(_SECTIONS)), st.sampled_from(["dir", "port", "token", "default", "type", "x"]),
        _VALUE.filter(lambda v: v is not None),
    ),
    st.sampled_from([
        b"\xef\xbb\xbf[web]\nport = 1\n", b"\xff\xfe[\x00w\x00", b"a = " + b"[" * 5000 + b"]" * 5000,
        b"x = {a = {b = {c = {d = {e = {f = {g = {h = {i = {j = {k = {l = 1}}}}}}}}}}}}",
        b"[providers.sketch]\ntype = \"sketch\"\ndelay = -1\n", b"[discord]\ntoken = \"" + SECRET.encode() + b"\"\n"
        b"upload_limit_mb = 0\n",
    ]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_FILE_BODY)
def test_any_config_file_loads_or_names_its_problem(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(body)
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert str(exc) and SECRET not in str(exc) and SECRET[:8] not in str(exc)


@pytest.mark.parametrize("make", ["directory", "not utf-8", "too deep"])
def test_unreadable_config_files_get_a_sentence(tmp_path: Path, make: str) -> None:
    path = tmp_path / "config.toml"
    if make == "directory":
        path.mkdir()
    elif make == "not utf-8":
        path.write_bytes(b'[storage]\ndir = "\xff\xfe"\n')
    else:
        path.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    said = str(caught.value)
    assert str(path) in said and {"directory": "cannot be read", "not utf-8": "UTF-8",
                                  "too deep": "too deeply"}[make] in said
