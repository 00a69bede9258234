"""Prices from config: a cloud provider's ``[providers.NAME.prices]`` table.

Prices change often and differ per model, so none is written in code. A table gives a price
per image (by quality) for estimates before a run, and prices per million tokens for the
actual cost after it, from the usage the provider reports. Either part may be left out: with
no token prices the per-image price is the actual cost too; with neither, everything is $0.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Keys of ``per_image``: a quality, or "default" for requests that name none.
PRICE_KEYS = ("default", "low", "medium", "high")
_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens one call used, as the provider reported them."""

    input_text: int = 0
    input_image: int = 0
    output_text: int = 0
    output_image: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_text + other.input_text, self.input_image + other.input_image,
            self.output_text + other.output_text, self.output_image + other.output_image,
        )


class Prices(BaseModel):
    """USD prices for the model of one provider section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Per image (square), keyed by quality ("low", "medium", "high") or "default".
    per_image: dict[str, float] = Field(default_factory=dict)
    #: Multiplier for portrait and landscape images, which cost more at some providers.
    non_square_factor: float = Field(default=1.0, ge=0)
    input_text_per_million: float = Field(default=0.0, ge=0)
    input_image_per_million: float = Field(default=0.0, ge=0)
    output_text_per_million: float = Field(default=0.0, ge=0)
    output_image_per_million: float = Field(default=0.0, ge=0)

    @field_validator("per_image")
    @classmethod
    def _known_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, price in value.items():
            if key not in PRICE_KEYS:
                raise ValueError(f"per_image keys are {', '.join(PRICE_KEYS)}, not '{key}'")
            if price < 0:
                raise ValueError("prices cannot be negative")
        return value

    @property
    def has_token_prices(self) -> bool:
        return any((self.input_text_per_million, self.input_image_per_million,
                    self.output_text_per_million, self.output_image_per_million))

    def per_image_usd(self, quality: str | None, *, square: bool = True) -> float:
        """One image's expected price; with no price for the quality, the dearest listed (budgets err high)."""
        table = self.per_image
        price = table.get(quality or "default", table.get("default"))
        if price is None:
            price = max(table.values(), default=0.0)
        return price * (1.0 if square else self.non_square_factor)

    def tokens_usd(self, usage: TokenUsage) -> float:
        """What ``usage`` costs at the per-million-token prices."""
        return (
            usage.input_text * self.input_text_per_million
            + usage.input_image * self.input_image_per_million
            + usage.output_text * self.output_text_per_million
            + usage.output_image * self.output_image_per_million
        ) / _MILLION

    def actual_usd(self, usage: TokenUsage | None, *, images: int, quality: str | None, square: bool) -> float:
        """A call's cost: from its token usage when both are known, else the per-image price."""
        if usage is not None and self.has_token_prices:
            return self.tokens_usd(usage)
        return images * self.per_image_usd(quality, square=square)
