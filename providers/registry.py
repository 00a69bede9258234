"""Provider types by name, and building the configured providers from ``[providers.NAME]``.

Types map to ``module:Class`` strings so a provider's SDK is imported only when a section uses
that type. Aliases are the section names users type after ``--provider``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bot.clock import Clock
from bot.errors import ConfigError
from providers.base import BaseProvider

PROVIDER_TYPES: dict[str, str] = {
    "sketch": "providers.sketch:SketchProvider",
    "openai": "providers.openai:OpenAIProvider",
    "gemini": "providers.gemini:GeminiProvider",
    "xai": "providers.xai:XAIProvider",
    "openrouter": "providers.openrouter:OpenRouterProvider",
    "a1111": "providers.a1111:A1111Provider",
    "comfyui": "providers.comfyui:ComfyUIProvider",
    "replicate": "providers.replicate:ReplicateProvider",
    "horde": "providers.horde:HordeProvider",
}


def provider_class(type_name: str) -> type[BaseProvider]:
    """The class for a provider type; ``ConfigError`` listing the known types otherwise."""
    target = PROVIDER_TYPES.get(type_name)
    if target is None:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise ConfigError(f"unknown provider type '{type_name}' (known types: {known})")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type) and issubclass(cls, BaseProvider)
    return cls


def build_providers(sections: Mapping[str, Mapping[str, Any]], *, clock: Clock) -> dict[str, BaseProvider]:
    """One provider instance per config section, keyed by alias. Raises ``ConfigError``."""
    built: dict[str, BaseProvider] = {}
    for name, section in sections.items():
        cls = provider_class(str(section.get("type", "")))
        try:
            settings = cls.Settings.model_validate(dict(section))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(["providers", name, *(str(p) for p in err["loc"])])
                msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(f"{key}: {msg}")
            raise ConfigError("invalid provider config:\n  " + "\n  ".join(problems)) from None
        built[name] = cls(name, settings, clock=clock)
    return built
