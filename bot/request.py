"""The generation request: what a user asked for, validated once at the edge.

A :class:`GenerationRequest` is closed (unknown fields are errors) and frozen; it is stored as
JSON with each job and read back on restart. Prompt text with Midjourney-style flags is turned
into requests by :mod:`bot.prompt`.
"""

from __future__ import annotations

from enum import StrEnum
from math import gcd

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_PROMPT_CHARS = 4000
MAX_COUNT = 4
MAX_SEED = 2**32 - 1


class JobKind(StrEnum):
    GENERATE = "generate"
    VARIATION = "variation"
    UPSCALE = "upscale"


class Quality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AspectRatio(BaseModel):
    """A reduced width:height ratio such as 16:9."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(ge=1, le=64)
    height: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _reduced_and_sane(self) -> AspectRatio:
        if gcd(self.width, self.height) != 1:
            raise ValueError("aspect ratio must be reduced (use 16:9, not 32:18)")
        if max(self.width, self.height) / min(self.width, self.height) > 4:
            raise ValueError("aspect ratio may be at most 4:1 either way")
        return self

    @classmethod
    def parse(cls, text: str) -> AspectRatio:
        """Parse ``W:H`` (reducing it); raises ``ValueError`` with a readable message."""
        parts = text.strip().split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"'{text}' is not a ratio like 16:9")
        w, h = (int(p) for p in parts)
        if w == 0 or h == 0:
            raise ValueError("aspect ratio sides must be positive")
        g = gcd(w, h)
        return cls(width=w // g, height=h // g)

    @property
    def value(self) -> float:
        return self.width / self.height

    def __str__(self) -> str:
        return f"{self.width}:{self.height}"

    def size_for(self, pixels: int, multiple: int = 64) -> tuple[int, int]:
        """A (width, height) near ``pixels`` total area with this ratio, rounded to ``multiple``."""
        h = (pixels / self.value) ** 0.5
        w = h * self.value
        return (max(multiple, round(w / multiple) * multiple), max(multiple, round(h / multiple) * multiple))


SQUARE = AspectRatio(width=1, height=1)


class GenerationRequest(BaseModel):
    """One generation job's parameters, as the user gave them (after styles are applied)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: AspectRatio = SQUARE
    count: int = Field(default=4, ge=1, le=MAX_COUNT)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    style: str | None = None
    provider: str | None = None
    quality: Quality | None = None
    steps: int | None = Field(default=None, ge=1, le=150)
    cfg: float | None = Field(default=None, ge=0.0, le=30.0)

    kind: JobKind = JobKind.GENERATE
    #: For variations and upscales: the job and image (0-based) they start from.
    source_job_id: str | None = None
    source_image_index: int | None = Field(default=None, ge=0, lt=MAX_COUNT)
    #: Variation strength, 0 (identical) to 1 (unrelated).
    strength: float | None = Field(default=None, ge=0.0, le=1.0)
    #: sha256 of a user-supplied input image in the blob store (image-to-image).
    init_image: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    # --- moderation (see bot/moderation.py); defaults only, so jobs stored before them still load ---
    #: ``--override``: a server admin draws a prompt a moderation rule would refuse (audited).
    override: bool = False
    #: Set at submit from the channel's NSFW policy: adult content may be drawn here. Providers
    #: with an NSFW switch (AI Horde's ``nsfw``, a safety checker) may relax it when this is set.
    nsfw_allowed: bool = False
    #: Set at submit when the prompt has NSFW terms (allowed here): surfaces hide the outputs
    #: behind a spoiler or a blur until clicked.
    flagged: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the prompt is empty")
        return value

    @model_validator(mode="after")
    def _source_complete(self) -> GenerationRequest:
        if self.kind is not JobKind.GENERATE and (
            self.source_job_id is None or self.source_image_index is None
        ):
            raise ValueError(f"a {self.kind.value} needs a source job and image")
        return self
