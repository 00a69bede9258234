"""The offline sketch provider: deterministic pictures, live previews on an injected clock, variations."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from bot.clock import FakeClock
from bot.errors import ConfigError, ProviderBadRequest
from bot.generation import GeneratedImage, ProgressUpdate, ProviderCall
from bot.request import AspectRatio, GenerationRequest, JobKind, Quality
from providers.registry import build_providers
from providers.sketch import SketchProvider, SketchSettings

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def sketch(clock: FakeClock | None = None, **settings: Any) -> SketchProvider:
    return SketchProvider("sketch", SketchSettings(type="sketch", **{"delay": 0, **settings}), clock=clock)


def call(
    *,
    seed: int = 1,
    count: int = 1,
    size: tuple[int, int] = (96, 96),
    init: bytes | None = None,
    **request: Any,
) -> ProviderCall:
    req = GenerationRequest(**{"prompt": PROMPT, **request})
    return ProviderCall(request=req, count=count, seed=seed, width=size[0], height=size[1], init_image=init)


class Progress:
    """Records every update and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.updates: list[ProgressUpdate] = []
        self._queue: asyncio.Queue[ProgressUpdate] = asyncio.Queue()

    async def __call__(self, update: ProgressUpdate) -> None:
        self.updates.append(update)
        self._queue.put_nowait(update)

    async def next(self) -> ProgressUpdate:
        return await asyncio.wait_for(self._queue.get(), 5)


async def draw(provider: SketchProvider, c: ProviderCall) -> list[GeneratedImage]:
    return await asyncio.wait_for(provider.generate(c, Progress()), 10)


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def difference(a: bytes, b: bytes) -> float:
    """Mean absolute pixel difference (0-255) between two same-sized images."""
    diff = ImageChops.difference(opened(a).convert("RGB"), opened(b).convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


# --- what comes back -----------------------------------------------------------------------------


async def test_same_prompt_and_seed_give_the_same_image() -> None:
    first, second = await draw(sketch(), call(seed=5)), await draw(sketch(), call(seed=5))
    assert first[0].data == second[0].data


async def test_seed_and_prompt_change_the_image() -> None:
    provider = sketch()
    base = (await draw(provider, call(seed=5)))[0].data
    assert (await draw(provider, call(seed=6)))[0].data != base
    assert (await draw(provider, call(seed=5, prompt="a cat")))[0].data != base


async def test_count_gives_consecutive_seeds_of_distinct_images() -> None:
    made = await draw(sketch(), call(seed=10, count=3, size=(88, 48)))
    assert [image.seed for image in made] == [10, 11, 12]
    assert len({image.data for image in made}) == 3
    for image in made:
        assert opened(image.data).format == "PNG"
        assert opened(image.data).size == (88, 48) == (image.width, image.height)
        assert (image.mime, image.provider, image.model, image.cost_usd) == (
            "image/png",
            "sketch",
            "sketch-v1",
            0.0,
        )
        assert image.revised_prompt is None


async def test_the_highest_seed_wraps_instead_of_leaving_the_seed_range() -> None:
    made = await draw(sketch(), call(seed=2**32 - 1, count=2))
    assert [image.seed for image in made] == [2**32 - 1, 0]


@pytest.mark.parametrize(
    "change",
    [{"negative_prompt": "circles"}, {"steps": 60}, {"cfg": 20.0}, {"quality": Quality.HIGH}],
    ids=["negative prompt", "steps", "cfg", "quality"],
)
async def test_every_parameter_shows_in_the_picture(change: dict[str, Any]) -> None:
    provider = sketch()
    plain = (await draw(provider, call(seed=3)))[0].data
    changed = (await draw(provider, call(seed=3, **change)))[0].data
    assert difference(plain, changed) > 1


@pytest.mark.parametrize("side", [64, 128, 256, 512])
async def test_every_picture_is_captioned_as_a_preview(side: int) -> None:
    # The caption is white text edged in black along the bottom; the picture itself (gradients and
    # translucent shapes) has neither pure white nor pure black there.
    image = (await draw(sketch(), call(seed=2, size=(side, side))))[0]
    strip = opened(image.data).convert("RGB").crop((0, side - side // 6, side, side))
    colours = {colour for _, colour in strip.getcolors(maxcolors=1 << 20) or []}
    assert (255, 255, 255) in colours and (0, 0, 0) in colours


async def test_size_follows_the_setting_and_the_aspect_ratio() -> None:
    provider = sketch(size=256)
    assert provider.size_for(AspectRatio(width=1, height=1)) == (256, 256)
    w, h = provider.size_for(AspectRatio(width=16, height=9))
    assert w % 8 == 0 and h % 8 == 0 and abs(w / h - 16 / 9) < 0.05 and abs(w * h - 256 * 256) < 6000


async def test_large_images_render_off_the_event_loop() -> None:
    # Other users' commands keep being served while a big sketch renders: the loop keeps ticking.
    ticks = 0
    rendering = True

    async def ticker() -> None:
        nonlocal ticks
        while rendering:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    made = await draw(sketch(), call(size=(1024, 768)))
    rendering = False
    await ticking
    assert opened(made[0].data).size == (1024, 768)
    assert ticks > 10


# --- time and previews ---------------------------------------------------------------------------


async def test_previews_arrive_as_time_passes() -> None:
    clock = FakeClock()
    provider = sketch(clock, delay=2.0, preview_frames=4)
    progress = Progress()
    job = asyncio.create_task(provider.generate(call(size=(256, 256)), progress))
    fractions = []
    for k in range(1, 5):
        assert not job.done()
        await clock.advance(0.5)
        update = await progress.next()
        fractions.append(update.fraction)
        assert update.text == f"step {k}/4"
        assert update.preview is not None
        preview = opened(update.preview)
        assert preview.format == "JPEG" and max(preview.size) <= 256
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    made = await asyncio.wait_for(job, 10)
    assert len(made) == 1


async def test_nothing_finishes_before_the_delay() -> None:
    clock = FakeClock()
    provider = sketch(clock, delay=2.0, preview_frames=4)
    progress = Progress()
    job = asyncio.create_task(provider.generate(call(size=(64, 64)), progress))
    await clock.advance(1.9)
    assert not job.done()
    assert [u.fraction for u in progress.updates] == [0.25, 0.5, 0.75]
    await clock.advance(0.1)
    assert len(await asyncio.wait_for(job, 5)) == 1


async def test_without_previews_it_still_takes_the_delay() -> None:
    clock = FakeClock()
    progress = Progress()
    job = asyncio.create_task(sketch(clock, delay=1.0, preview_frames=0).generate(call(), progress))
    await clock.advance(0.9)
    assert not job.done()
    await clock.advance(0.1)
    await asyncio.wait_for(job, 5)
    assert progress.updates == []


async def test_delay_zero_answers_at_once_without_progress() -> None:
    clock = FakeClock()  # never advanced: any sleep would hang until the timeout
    progress = Progress()
    made = await asyncio.wait_for(sketch(clock, delay=0).generate(call(count=4, size=(64, 64)), progress), 5)
    assert len(made) == 4
    assert progress.updates == [] and clock.sleepers == 0


# --- variations, image-to-image, upscales --------------------------------------------------------


async def test_a_variation_resembles_its_source() -> None:
    provider = sketch()
    source = (await draw(provider, call(seed=1, size=(128, 128))))[0].data
    unrelated = (await draw(provider, call(seed=999, size=(128, 128))))[0].data
    variation_call = call(
        seed=999,
        size=(128, 128),
        init=source,
        kind=JobKind.VARIATION,
        source_job_id="job-1",
        source_image_index=0,
    )
    variation = (await draw(provider, variation_call))[0]
    assert variation.data != source
    assert difference(variation.data, source) < difference(unrelated, source) / 2


async def test_strength_decides_how_far_a_variation_moves() -> None:
    provider = sketch()
    source = (await draw(provider, call(seed=1)))[0].data
    common: dict[str, Any] = {"kind": JobKind.VARIATION, "source_job_id": "j", "source_image_index": 0}
    near = (await draw(provider, call(seed=50, init=source, strength=0.1, **common)))[0].data
    far = (await draw(provider, call(seed=50, init=source, strength=0.9, **common)))[0].data
    assert difference(near, source) < difference(far, source)


async def test_image_to_image_starts_from_the_given_picture() -> None:
    photo = Image.new("RGB", (300, 200), (250, 250, 250))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    made = (await draw(sketch(), call(seed=4, init=buffer.getvalue())))[0]
    plain = (await draw(sketch(), call(seed=4)))[0]
    brightness = [sum(ImageStat.Stat(opened(i.data).convert("L")).mean) for i in (made, plain)]
    assert brightness[0] > brightness[1]  # pulled towards the white source


async def test_upscale_doubles_the_source() -> None:
    source = (await draw(sketch(), call(size=(96, 64))))[0].data
    upscale = call(count=1, init=source, kind=JobKind.UPSCALE, source_job_id="j", source_image_index=0)
    [image] = await draw(sketch(), upscale)
    assert (image.width, image.height, image.mime) == (192, 128, "image/png")
    assert opened(image.data).size == (192, 128)


@pytest.mark.parametrize("kind", [JobKind.VARIATION, JobKind.UPSCALE])
async def test_a_missing_source_is_a_bad_request(kind: JobKind) -> None:
    with pytest.raises(ProviderBadRequest, match="source image"):
        await draw(sketch(), call(kind=kind, source_job_id="j", source_image_index=0))


async def test_an_unreadable_source_is_a_bad_request() -> None:
    bad = call(init=b"<svg/>", kind=JobKind.VARIATION, source_job_id="j", source_image_index=0)
    with pytest.raises(ProviderBadRequest, match="unusable"):
        await draw(sketch(), bad)


# --- configuration -------------------------------------------------------------------------------


def test_defaults_and_declared_capabilities() -> None:
    [provider] = build_providers({"sketch": {"type": "sketch"}}, clock=FakeClock()).values()
    assert isinstance(provider, SketchProvider)
    assert (provider.model, provider.concurrency) == ("sketch-v1", 4)
    assert (provider.sketch_settings.delay, provider.sketch_settings.size) == (2.0, 512)
    caps = provider.capabilities
    assert caps.aspect_ratios is None and caps.max_images_per_call == 4
    assert all(
        [
            caps.negative_prompt,
            caps.seed,
            caps.deterministic,
            caps.image_input,
            caps.variation,
            caps.upscale,
            caps.live_previews,
            caps.steps,
            caps.cfg,
            caps.quality,
        ]
    )


def test_an_empty_model_means_the_default() -> None:
    assert SketchSettings(type="sketch", model="").model == "sketch-v1"


@pytest.mark.parametrize(
    ("section", "names"),
    [
        ({"delai": 1}, "providers.preview.delai: unknown key"),
        ({"size": 10}, "providers.preview.size"),
        ({"delay": -1}, "providers.preview.delay"),
        ({"preview_frames": -1}, "providers.preview.preview_frames"),
    ],
)
def test_bad_settings_name_the_key(section: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        build_providers({"preview": {"type": "sketch", **section}}, clock=FakeClock())


async def test_health_says_there_is_no_model() -> None:
    health = await sketch().health()
    assert health.ok and "no model" in health.detail
