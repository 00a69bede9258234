"""The provider base class: one module per backend, one class, one async ``generate``.

A provider declares its :class:`~bot.generation.Capabilities` as data and validates its own
config section with a closed :class:`ProviderSettings` subclass, so a misspelt key in
``[providers.NAME]`` is an error naming ``providers.NAME.key``. Adding a provider is one new
module and one line in ``providers/registry.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.clock import Clock, SystemClock
from bot.generation import Capabilities, GeneratedImage, Health, ProgressCallback, ProviderCall
from bot.request import AspectRatio


class ProviderSettings(BaseModel):
    """Keys every ``[providers.NAME]`` section may have; subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = ""
    concurrency: int = Field(default=2, ge=1, le=64)
    timeout_seconds: float = Field(default=300.0, gt=0)


class BaseProvider:
    """Shared plumbing; subclasses set ``type_name``, ``Settings`` and implement ``generate``."""

    type_name: ClassVar[str] = ""
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        self.name = name
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.model = settings.model
        self.concurrency = settings.concurrency
        self.capabilities = self.declare_capabilities()

    def declare_capabilities(self) -> Capabilities:
        """What this provider, with its configured model, can do."""
        return Capabilities()

    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        raise NotImplementedError

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        """About a megapixel in the asked ratio; providers with fixed sizes override this."""
        return ratio.size_for(1024 * 1024)

    def estimate_cost(self, call: ProviderCall) -> float:
        return 0.0

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        return None

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"type": cls.type_name}
