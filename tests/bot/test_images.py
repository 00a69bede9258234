"""bot.images: what users and surfaces see of validation, grids, thumbnails, upload fitting and parameters."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bot import images
from bot.errors import BadImage

RED, BLUE = (220, 30, 30), (30, 30, 220)


def encode(im: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def solid(w: int, h: int, colour: tuple[int, int, int] = RED, fmt: str = "PNG") -> bytes:
    return encode(Image.new("RGB", (w, h), colour), fmt)


def noise(side: int) -> bytes:
    """A PNG of random pixels (the same every time): it compresses badly, so it is big for its size."""
    return encode(Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3)))


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def pixel(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def png_declaring(width: int, height: int) -> bytes:
    """A structurally valid PNG whose header claims ``width`` x ``height`` without the pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def corrupted(png: bytes) -> bytes:
    start = png.index(b"IDAT") + 40
    return png[:start] + b"\xff" * 64 + png[start + 64 :]


# --- validating what users send ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_accepts_the_allowed_formats(fmt: str) -> None:
    info = images.validate_user_image(solid(120, 80, fmt=fmt))
    assert (info.width, info.height, info.format) == (120, 80, fmt)
    assert info.mime == f"image/{fmt.lower()}"


def test_an_animated_gif_counts_as_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert images.validate_user_image(gif).format == "GIF"
    assert opened(images.to_png(gif)).convert("RGB").getpixel((0, 0)) == RED


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty file", lambda: b"", "empty"),
    ("decompression bomb header", lambda: png_declaring(100_000, 100_000), "megapixels"),
    ("too many pixels", lambda: png_declaring(8_000, 6_000), "megapixels"),
    ("extreme aspect ratio", lambda: encode(Image.new("L", (1, 100_000))), "times the other"),
    ("svg", lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    ("html", lambda: b"<!DOCTYPE html><html><body><img src=x></body></html>", "web page"),
    ("plain text", lambda: b"definitely a picture of a cat", "text"),
    ("bmp (not allowed)", lambda: solid(10, 10, fmt="BMP"), "PNG, JPEG, WEBP or GIF"),
    ("truncated png", lambda: noise(64)[:2000], "damaged or incomplete"),
    ("png with corrupt data", lambda: corrupted(noise(64)), "damaged"),
    ("png signature then junk", lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "damaged"),
]


@pytest.mark.parametrize(
    ("data", "says"), [(make, says) for _, make, says in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_input_is_refused_with_a_clear_message(data: Callable[[], bytes], says: str) -> None:
    with pytest.raises(BadImage) as caught:
        images.validate_user_image(data())
    assert says in caught.value.message


@pytest.mark.parametrize("name", ["empty file", "svg", "truncated png", "bmp (not allowed)"])
def test_refusals_say_what_is_allowed(name: str) -> None:
    make = next(m for n, m, _ in HOSTILE if n == name)
    with pytest.raises(BadImage, match="PNG, JPEG, WEBP or GIF"):
        images.validate_user_image(make())


def test_size_limit_is_checked_before_anything_is_decoded() -> None:
    # Not an image at all, yet the answer is about its size: nothing parsed it.
    with pytest.raises(BadImage, match="limit is 20.0 MB"):
        images.validate_user_image(b"\0" * (20 * 1024 * 1024 + 1))
    with pytest.raises(BadImage, match="limit is"):
        images.validate_user_image(noise(64), max_bytes=1000)


def test_limits_can_be_tightened() -> None:
    with pytest.raises(BadImage, match="megapixels"):
        images.validate_user_image(solid(200, 200), max_pixels=10_000)
    with pytest.raises(BadImage, match="at most 2 times"):
        images.validate_user_image(solid(300, 100), max_aspect=2.0)


def test_image_info_reads_the_header_only() -> None:
    # The pixels of this "image" do not exist; its header is still readable.
    info = images.image_info(png_declaring(3000, 2000))
    assert (info.width, info.height, info.mime) == (3000, 2000, "image/png")
    with pytest.raises(BadImage):
        images.image_info(b"<svg/>")


# --- grids and thumbnails ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "size"), [(1, (100, 60)), (2, (208, 60)), (3, (208, 128)), (4, (208, 128))]
)
def test_grid_layout(count: int, size: tuple[int, int]) -> None:
    grid = images.make_grid([solid(100, 60)] * count, gap=8)
    assert grid.startswith(b"\x89PNG")
    assert opened(grid).size == size


def test_grid_cells_fit_the_largest_image_and_centre_the_others() -> None:
    grid = opened(images.make_grid([solid(100, 100, RED), solid(50, 50, BLUE)], gap=8)).convert("RGBA")
    assert grid.size == (208, 100)
    assert pixel(grid, (108 + 50, 50)) == (*BLUE, 255)  # the small image sits in the middle of its cell
    assert pixel(grid, (108 + 5, 5))[3] == 0  # around it the cell is empty
    assert pixel(grid, (104, 50))[3] == 0  # and so is the gap


def test_three_images_leave_the_fourth_cell_empty() -> None:
    grid = opened(images.make_grid([solid(40, 40)] * 3, gap=4)).convert("RGBA")
    assert pixel(grid, (10, 54))[:3] == RED
    assert pixel(grid, (54, 54))[3] == 0


def test_a_grid_of_one_is_the_image_itself() -> None:
    jpeg = solid(64, 48, BLUE, fmt="JPEG")
    single = opened(images.make_grid([jpeg]))
    assert single.format == "PNG" and single.size == (64, 48)
    png = solid(64, 48)
    assert images.make_grid([png]) == png


def test_thumbnail_is_a_small_webp_keeping_the_shape() -> None:
    thumb = opened(images.thumbnail(solid(1000, 500, fmt="JPEG")))
    assert thumb.format == "WEBP" and thumb.size == (384, 192)
    assert opened(images.thumbnail(solid(100, 50), max_side=384)).size == (100, 50)  # never enlarged


# --- fitting an upload limit ---------------------------------------------------------------------


PARAMS = {"prompt": "a lighthouse at dusk, oil on canvas ☀", "seed": "42", "model": "sketch-v1"}


def test_a_png_that_fits_is_delivered_unchanged() -> None:
    png = images.embed_parameters(noise(256), PARAMS)
    assert images.fit_to_budget(png, len(png), filename_stem="job-1") == (png, "image/png", "job-1.png")


@pytest.mark.parametrize("budget", [400_000, 100_000, 30_000, 8_000, 2_500])
def test_fit_to_budget_never_exceeds_the_budget(budget: int) -> None:
    png = images.embed_parameters(noise(512), PARAMS)
    assert len(png) > budget
    data, mime, filename = images.fit_to_budget(png, budget, filename_stem="job-1")
    assert len(data) <= budget
    result = opened(data)
    assert images.image_info(data).mime == mime
    assert filename == f"job-1.{'webp' if mime == 'image/webp' else 'jpg'}"
    assert result.width == result.height  # shrunk, never distorted
    assert images.read_parameters(data) == PARAMS  # the parameters travel in EXIF


def test_fit_to_budget_shrinks_only_as_far_as_needed() -> None:
    png = noise(512)
    generous, _, _ = images.fit_to_budget(png, len(png) - 1)
    tight, _, _ = images.fit_to_budget(png, 20_000)
    assert opened(generous).size == (512, 512)  # re-encoding was enough
    assert opened(tight).width < 512


def test_a_budget_too_small_for_even_a_tiny_image_is_an_error() -> None:
    with pytest.raises(BadImage, match="cannot be made to fit"):
        images.fit_to_budget(noise(256), 60)


# --- parameters ----------------------------------------------------------------------------------


def test_parameters_round_trip_and_other_tools_can_read_them() -> None:
    params = {
        "prompt": "a red fox, watercolour ☾",
        "negative_prompt": "blurry",
        "seed": "7",
        "steps": "30",
        "model": "sketch-v1",
        "provider": "sketch",
    }
    original = solid(64, 48)
    png = images.embed_parameters(original, params)
    assert images.read_parameters(png) == params
    text = opened(png).info["parameters"]
    assert text.splitlines() == [
        "a red fox, watercolour ☾",
        "Negative prompt: blurry",
        "Steps: 30, Seed: 7, Size: 64x48, Model: sketch-v1, Provider: sketch",
    ]
    assert opened(png).tobytes() == opened(original).tobytes()  # pixels untouched


def test_embedding_again_replaces_the_parameters() -> None:
    png = images.embed_parameters(
        images.embed_parameters(solid(32, 32), {"prompt": "old"}), {"prompt": "new"}
    )
    assert images.read_parameters(png) == {"prompt": "new"}
    assert png.count(b"imaginebot") == 1


def test_images_without_parameters_read_as_empty() -> None:
    assert images.read_parameters(solid(32, 32)) == {}
    assert images.read_parameters(solid(32, 32, fmt="JPEG")) == {}
    assert images.read_parameters(b"not an image") == {}


def test_to_png_converts_and_leaves_pngs_alone() -> None:
    png = images.to_png(solid(30, 20, fmt="WEBP"))
    assert opened(png).format == "PNG" and opened(png).size == (30, 20)
    original = images.embed_parameters(solid(30, 20), {"prompt": "kept"})
    assert images.to_png(original) == original


def test_compressed_parameters_from_other_tools_are_read_and_text_bombs_skipped() -> None:
    info = PngInfo()
    info.add_itxt("imaginebot", '{"prompt": "zipped ✓"}', zip=True)
    assert images.read_parameters(encode(Image.new("RGB", (8, 8)), pnginfo=info)) == {"prompt": "zipped ✓"}
    bomb = PngInfo()
    bomb.add_text("imaginebot", "{" + " " * 5_000_000 + "}", zip=True)  # inflates to 5 MB
    png = encode(Image.new("RGB", (8, 8)), pnginfo=bomb)
    assert len(png) < 20_000
    assert images.read_parameters(png) == {}
