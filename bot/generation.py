"""What the core asks of a provider, and what it gets back.

The core only knows the :class:`Provider` protocol below; concrete providers live in
``providers/`` (see ``providers/base.py``) and are handed to the core by the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from bot.request import AspectRatio, GenerationRequest


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider (with its configured model) can do, declared as data and checked before a call."""

    #: Aspect ratios accepted; ``None`` means any ratio (the provider sizes freely).
    aspect_ratios: frozenset[str] | None = None
    max_images_per_call: int = 1
    negative_prompt: bool = False
    #: Without ``negative_prompt``: fold a negative prompt into the prompt (True) or refuse the request.
    fold_negative_prompt: bool = False
    seed: bool = False
    #: Same seed and parameters give the same image (enables the result cache).
    deterministic: bool = False
    image_input: bool = False
    variation: bool = False
    upscale: bool = False
    live_previews: bool = False
    steps: bool = False
    cfg: bool = False
    quality: bool = False

    def supports_ratio(self, ratio: AspectRatio) -> bool:
        return self.aspect_ratios is None or str(ratio) in self.aspect_ratios


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A provider's report while it works; every field is optional."""

    fraction: float | None = None
    text: str = ""
    preview: bytes | None = None
    #: For remote queues (AI Horde): place in the provider's own queue and its ETA.
    queue_position: int | None = None
    eta_seconds: float | None = None


ProgressCallback = Callable[[ProgressUpdate], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One call to a provider: a request resolved to concrete numbers.

    ``count`` never exceeds the provider's ``max_images_per_call`` (the runner splits); ``seed``
    is always set (the runner picks one when the user did not). ``init_image`` holds the bytes
    of the source image for variations, upscales and image-to-image. ``request.nsfw_allowed``
    says whether the channel's NSFW policy allows adult content (for providers with an NSFW switch).
    """

    request: GenerationRequest
    count: int
    seed: int
    width: int
    height: int
    init_image: bytes | None = None


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image a provider made."""

    data: bytes
    mime: str
    width: int
    height: int
    seed: int | None
    provider: str
    model: str
    revised_prompt: str | None = None
    cost_usd: float = 0.0
    #: Free-form extra facts worth storing (sampler, steps ...).
    info: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str = ""


class Provider(Protocol):
    """A configured image backend. One instance per ``[providers.NAME]`` section."""

    #: The alias users type (the NAME in ``[providers.NAME]``).
    name: str
    #: The backend type ("sketch", "openai" ...).
    type_name: ClassVar[str]
    model: str
    capabilities: Capabilities
    #: How many calls may run at once against this provider.
    concurrency: int

    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        """Make ``call.count`` images; report progress as it goes; raise ``ProviderError`` on failure."""
        ...

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        """The pixel size this provider renders for an aspect ratio."""
        ...

    def estimate_cost(self, call: ProviderCall) -> float:
        """USD this call is expected to cost (0 for free backends)."""
        ...

    async def health(self) -> Health:
        """Whether the backend answers; never raises."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """A provider's verdict on a text: whether it is flagged, and the categories that fired."""

    flagged: bool
    categories: tuple[str, ...] = ()


@runtime_checkable
class SupportsModeration(Protocol):
    """A provider that can check a prompt before drawing (OpenAI's moderation endpoint, say).

    Optional: the service asks it only when a server's ``moderation`` setting is "provider".
    Raises ``ProviderError`` like ``generate`` does.
    """

    async def moderate(self, text: str) -> ModerationResult: ...
