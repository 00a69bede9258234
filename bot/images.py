"""Image checks and conversions: user-image validation, grids, thumbnails, fitting an upload limit, and
generation parameters embedded in the files we hand out.

Every function here is pure and synchronous. Decoding or encoding a large image takes tens to hundreds of
milliseconds, so async callers run these with ``asyncio.to_thread``; calling them on the event loop would
stall every other user's command while one image is processed.

Only PNG, JPEG, WEBP and GIF (first frame) are read, from anyone. Pillow can open many more formats (EPS,
TIFF, ICO ...), each one more parser exposed to strangers' files for no benefit in a chat bot.

Parameters travel as PNG text chunks ("parameters" in the AUTOMATIC1111 style that other tools read, and
"imaginebot" with JSON that :func:`read_parameters` reads back). When :func:`fit_to_budget` has to
re-encode to WEBP or JPEG it carries them over in EXIF: the AUTOMATIC1111 text in UserComment (where
AUTOMATIC1111 itself puts it) and the JSON, ASCII-escaped, in ImageDescription.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageFile

from bot.errors import BadImage

MAX_USER_IMAGE_BYTES = 20 * 1024 * 1024
MAX_USER_IMAGE_PIXELS = 40_000_000
MAX_USER_IMAGE_ASPECT = 8.0
#: The smallest longest side :func:`fit_to_budget` will shrink an image to before giving up.
MIN_FIT_SIDE = 64

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_EXTENSION = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
_ALLOWED = "PNG, JPEG, WEBP or GIF"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_PARAMS_KEY = "parameters"
_JSON_KEY = "imaginebot"
#: A compressed text chunk may not inflate past this; a few KB is normal, more is an attack.
_MAX_TEXT = 1024 * 1024
# What Pillow raises from header parsing and decoding of hostile or damaged files (UnidentifiedImageError
# is an OSError; zlib errors surface from PNG streams).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# Tried in order once the original is too big: WEBP is usually the smallest, JPEG is the fallback.
_QUALITY_LADDER = (("WEBP", 85), ("WEBP", 70), ("WEBP", 50), ("JPEG", 80), ("JPEG", 60), ("JPEG", 40))


@dataclass(frozen=True)
class ImageInfo:
    """What an image is, from its header."""

    width: int
    height: int
    mime: str
    format: str


def image_info(data: bytes) -> ImageInfo:
    """Size and format of a PNG, JPEG, WEBP or GIF, reading only its header. Raises ``BadImage``."""
    with _open(data) as im:
        return _info(im)


def validate_user_image(
    data: bytes,
    *,
    max_bytes: int = MAX_USER_IMAGE_BYTES,
    max_pixels: int = MAX_USER_IMAGE_PIXELS,
    max_aspect: float = MAX_USER_IMAGE_ASPECT,
) -> ImageInfo:
    """Check an image a user supplied before anything else touches it. Raises ``BadImage``.

    Cheap checks come first (byte size, magic bytes, header dimensions) so a hostile file is
    refused before a single pixel is decoded; then the first frame is decoded in full to catch
    truncated and corrupt files.
    """
    if not data:
        raise BadImage(f"That file is empty. Please attach a {_ALLOWED} image.")
    check_user_image_size(len(data), max_bytes=max_bytes)
    with _open(data, max_pixels=max_pixels) as im:
        info = _info(im)
        w, h = info.width, info.height
        if w * h > max_pixels:
            raise BadImage(
                f"That image is {w}×{h} pixels ({w * h / 1e6:.0f} megapixels); the most we accept is "
                f"{max_pixels / 1e6:g} megapixels. Please send a smaller image."
            )
        if max(w, h) / min(w, h) > max_aspect:
            raise BadImage(
                f"That image is {w}×{h} pixels, a very thin strip; one side may be at most "
                f"{max_aspect:g} times the other. Please crop it first."
            )
        _load(im, info.format)
    return info


def check_user_image_size(size: int, *, max_bytes: int = MAX_USER_IMAGE_BYTES) -> None:
    """Refuse a user's file by its size alone, e.g. before downloading it. Raises ``BadImage``."""
    if size > max_bytes:
        raise BadImage(
            f"That image is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}. "
            "Please send a smaller or more compressed image."
        )


def make_grid(images: Sequence[bytes], *, gap: int = 8) -> bytes:
    """One PNG showing ``images`` side by side: 2 → 1×2, 3 or 4 → 2×2, more → a near-square grid.

    Cells are as large as the largest image, which sits centred in its cell; gaps and empty
    cells are transparent so the grid blends into the chat's own background. A single image is
    returned as a PNG (unchanged when it already is one).
    """
    if not images:
        raise ValueError("make_grid needs at least one image")
    if len(images) == 1:
        return to_png(images[0])
    tiles = [decode(data) for data in images]
    cols = 2 if len(tiles) <= 4 else math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    cell_w = max(t.width for t in tiles)
    cell_h = max(t.height for t in tiles)
    grid = Image.new("RGBA", (cols * cell_w + (cols - 1) * gap, rows * cell_h + (rows - 1) * gap))
    for index, tile in enumerate(tiles):
        row, col = divmod(index, cols)
        x = col * (cell_w + gap) + (cell_w - tile.width) // 2
        y = row * (cell_h + gap) + (cell_h - tile.height) // 2
        grid.paste(tile.convert("RGBA"), (x, y))
    return _encode(grid, "PNG")


def thumbnail(data: bytes, max_side: int = 384) -> bytes:
    """A WEBP no larger than ``max_side`` on its longest side (never enlarged)."""
    with _open(data) as im:
        if im.format == "JPEG":
            # Lets libjpeg decode at 1/2, 1/4 or 1/8 scale: far faster for big photos.
            im.draft(im.mode, (max_side, max_side))
        _load(im, str(im.format))
        small = _normalised(im)
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _encode(small, "WEBP", quality=80)


def fit_to_budget(data: bytes, max_bytes: int, *, filename_stem: str = "image") -> tuple[bytes, str, str]:
    """``(bytes, mime, filename)`` no larger than ``max_bytes``, changing the image as little as possible.

    The original is kept when it fits. Otherwise it is re-encoded to WEBP, then JPEG, at falling
    quality, then shrunk step by step. Embedded parameters move to EXIF (see the module docstring)
    and are dropped only when a tiny image cannot otherwise fit. Raises ``BadImage`` when even a
    ``MIN_FIT_SIDE``-pixel version is too big.
    """
    fmt = _sniff(data)
    if fmt is not None and len(data) <= max_bytes:
        return data, _MIME[fmt], f"{filename_stem}.{_EXTENSION[fmt]}"
    exif = _metadata_exif(data)
    image = decode(data)
    smallest = len(data)
    for fmt, quality in _QUALITY_LADDER:
        out = _encode(image, fmt, quality=quality, exif=exif)
        if len(out) <= max_bytes:
            return out, _MIME[fmt], f"{filename_stem}.{_EXTENSION[fmt]}"
        smallest = min(smallest, len(out))
        if smallest > 3 * max_bytes:
            break  # lower quality will not close that gap; each full-size encode of a big grid costs ~1 s
    shrunk = _shrink_to_fit(image, max_bytes, exif, smallest)
    if shrunk is not None:
        return shrunk, "image/webp", f"{filename_stem}.webp"
    raise BadImage(f"That image cannot be made to fit in {_megabytes(max_bytes)}, even as a tiny preview.")


def _shrink_to_fit(
    image: Image.Image, max_bytes: int, exif: Image.Exif | None, smallest: int
) -> bytes | None:
    """A smaller WEBP within ``max_bytes``, shrinking no further than ``MIN_FIT_SIDE``; None if none fits."""
    full_side = max(image.size)
    side = full_side
    while True:
        # Bytes scale roughly with area, so aim straight for the budget, but move at least 10% and at
        # most halve per step so a poor guess neither stalls nor overshoots by much.
        factor = min(0.9, max(0.5, 0.95 * math.sqrt(max_bytes / smallest)))
        side = min(full_side, max(MIN_FIT_SIDE, int(side * factor)))
        scale = side / full_side
        small = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
        last = side <= MIN_FIT_SIDE
        # Metadata is dropped only at the last step, where a long prompt can outweigh the pixels.
        for metadata in [exif, None] if last and exif is not None else [exif]:
            out = _encode(small, "WEBP", quality=60, exif=metadata)
            if len(out) <= max_bytes:
                return out
            smallest = min(smallest, len(out))
        if last:
            return None


def embed_parameters(png: bytes, params: Mapping[str, str]) -> bytes:
    """The PNG with ``params`` in a "parameters" (AUTOMATIC1111 text) and an "imaginebot" (JSON) chunk.

    The pixels are not re-encoded: the chunks are spliced in before the image data, replacing
    earlier copies. Common keys: prompt, negative_prompt, steps, sampler, cfg, seed, model; the
    size is taken from the image itself. Non-PNG input is converted first.
    """
    png = to_png(png)
    if png[12:16] != b"IHDR" or len(png) < 33:
        raise _damaged("PNG")
    width, height = struct.unpack(">II", png[16:24])
    chunks = _text_chunk(_PARAMS_KEY, _a1111_text(params, width, height)) + _text_chunk(
        _JSON_KEY, json.dumps(dict(params), ensure_ascii=True, sort_keys=True)
    )
    out = [_PNG_SIGNATURE]
    for ctype, start, end in _png_chunks(png):
        body = png[start + 8 : end - 4]
        if ctype in _TEXT_CHUNKS and body.partition(b"\0")[0] in (b"parameters", b"imaginebot"):
            continue
        if ctype == b"IDAT" and chunks:
            out.append(chunks)
            chunks = b""
        out.append(png[start:end])
    return b"".join(out)


def read_parameters(data: bytes) -> dict[str, str]:
    """The parameters :func:`embed_parameters` stored (also after :func:`fit_to_budget`); ``{}`` if none."""
    fmt = _sniff(data)
    text: str | None = None
    try:
        if fmt == "PNG":
            text = _png_texts(data).get(_JSON_KEY)
        elif fmt in ("JPEG", "WEBP"):
            with _open(data) as im:
                value = im.getexif().get(ExifTags.Base.ImageDescription)
                text = value if isinstance(value, str) else None
        loaded = json.loads(text) if text else None
    except (BadImage, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(key): str(value) for key, value in loaded.items()}


def to_png(data: bytes) -> bytes:
    """The image as PNG; a PNG is returned unchanged (keeping its text chunks)."""
    if _sniff(data) == "PNG":
        return data
    return _encode(decode(data), "PNG")


def decode(data: bytes) -> Image.Image:
    """The first frame of a PNG, JPEG, WEBP or GIF, decoded, in RGB or RGBA. Raises ``BadImage``."""
    with _open(data) as im:
        _load(im, str(im.format))
        return _normalised(im)


# --- reading ----------------------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    """The allowed format ``data`` claims by its magic bytes, before any parser sees it."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def _not_an_image(data: bytes) -> BadImage:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in head):
        hint = " (it is an SVG drawing; vector images are not supported)"
    elif b"<html" in head or head.startswith(b"<!doctype"):
        hint = " (it is a web page)"
    elif head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        hint = " (it is text)"
    else:
        hint = ""
    return BadImage(f"That file is not a {_ALLOWED} image{hint}. Please attach one of those.")


def _open(data: bytes, *, max_pixels: int = MAX_USER_IMAGE_PIXELS) -> ImageFile.ImageFile:
    """Parse the header only, restricted to the sniffed format."""
    fmt = _sniff(data)
    if fmt is None:
        raise _not_an_image(data)
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except _BOMB_ERRORS as exc:
        # Pillow refuses absurd header sizes itself (and warns, which is an error under our tests).
        raise BadImage(
            f"That image claims to be enormous; the most we accept is {max_pixels / 1e6:g} megapixels."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise _damaged(fmt) from exc


def _load(im: ImageFile.ImageFile, fmt: str) -> None:
    try:
        im.load()
    except (*_BOMB_ERRORS, *_DECODE_ERRORS) as exc:
        raise _damaged(fmt) from exc


def _damaged(fmt: str) -> BadImage:
    return BadImage(
        f"That {fmt} file is damaged or incomplete, so it cannot be read. "
        f"Please re-export it as {_ALLOWED} and try again."
    )


def _info(im: ImageFile.ImageFile) -> ImageInfo:
    fmt = str(im.format)
    if im.width < 1 or im.height < 1:
        raise _damaged(fmt)
    return ImageInfo(width=im.width, height=im.height, mime=_MIME[fmt], format=fmt)


def _normalised(im: Image.Image) -> Image.Image:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    mode = "RGBA" if has_alpha else "RGB"
    try:
        return im.convert(mode) if im.mode != mode else im.copy()
    except ValueError as exc:  # exotic modes Pillow cannot convert (16-bit greyscale and the like)
        raise _damaged(str(im.format)) from exc


def _png_chunks(png: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, ``start`` at its length field and ``end`` past its CRC."""
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(png):
            raise _damaged("PNG")
        ctype = png[pos + 4 : pos + 8]
        yield ctype, pos, end
        if ctype == b"IEND":
            return
        pos = end


def _png_texts(png: bytes) -> dict[str, str]:
    """Our two text chunks, wherever they are in the file, without decoding any pixels.

    A chunk that will not inflate (corrupt, or a text bomb) is skipped: losing the parameters is
    better than refusing an image whose pixels are fine.
    """
    found: dict[str, str] = {}
    for ctype, start, end in _png_chunks(png):
        keyword, _, rest = png[start + 8 : end - 4].partition(b"\0")
        key = keyword.decode("latin-1")
        if ctype not in _TEXT_CHUNKS or key not in (_PARAMS_KEY, _JSON_KEY):
            continue
        text: bytes | None = rest
        if ctype == b"zTXt":
            text = _inflate(rest[1:])
        elif ctype == b"iTXt" and len(rest) >= 2:
            text = rest[2:].split(b"\0", 2)[-1]  # past the language tag and translated keyword
            text = _inflate(text) if rest[0] else text
        if text is not None:
            found[key] = text.decode("utf-8" if ctype == b"iTXt" else "latin-1", "replace")
    return found


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, _MAX_TEXT)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else out


def _metadata_exif(data: bytes) -> Image.Exif | None:
    """EXIF carrying the parameters of ``data`` into a WEBP or JPEG, or None when there are none."""
    fmt = _sniff(data)
    if fmt in ("JPEG", "WEBP"):
        with _open(data) as im:
            exif = im.getexif()
        return exif if len(exif) else None
    if fmt != "PNG":
        return None
    texts = _png_texts(data)
    if not texts:
        return None
    exif = Image.Exif()
    if _PARAMS_KEY in texts:
        # The EXIF "UNICODE" character code means UTF-16; big-endian is what AUTOMATIC1111 writes.
        user_comment = b"UNICODE\0" + texts[_PARAMS_KEY].encode("utf-16-be")
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = user_comment
    if _JSON_KEY in texts:
        try:
            exif[ExifTags.Base.ImageDescription] = json.dumps(json.loads(texts[_JSON_KEY]), ensure_ascii=True)
        except ValueError:
            pass  # someone else's malformed chunk: carry over what we can rather than fail the upload
    return exif


# --- writing ----------------------------------------------------------------------------------------


def _encode(im: Image.Image, fmt: str, *, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {} if exif is None else {"exif": exif}
    if fmt == "JPEG" and im.mode != "RGB":
        im = _flatten(im)
    if fmt == "PNG":
        im.save(out, "PNG")
    else:
        im.save(out, fmt, quality=quality, **options)
    return out.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no alpha, and white is how most viewers show transparency."""
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _text_chunk(keyword: str, text: str) -> bytes:
    try:
        ctype, body = b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError:
        # iTXt: keyword, no compression, empty language tag and translated keyword, UTF-8 text.
        ctype, body = b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    crc = zlib.crc32(ctype + body)
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


_A1111_LABELS = (("steps", "Steps"), ("sampler", "Sampler"), ("cfg", "CFG scale"), ("seed", "Seed"))
_NOT_LISTED = {"prompt", "negative_prompt", "size", "width", "height", "model"}


def _a1111_text(params: Mapping[str, str], width: int, height: int) -> str:
    """The AUTOMATIC1111 "parameters" text: prompt, negative prompt, then one ``Key: value`` line."""
    lines = [params.get("prompt", "")]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields = [(label, params[key]) for key, label in _A1111_LABELS if params.get(key)]
    fields.append(("Size", f"{width}x{height}"))
    if params.get("model"):
        fields.append(("Model", params["model"]))
    known = {key for key, _ in _A1111_LABELS} | _NOT_LISTED
    fields += [
        (key.replace("_", " ").capitalize(), v) for key, v in sorted(params.items()) if v and key not in known
    ]
    lines.append(", ".join(f"{label}: {_quoted(value)}" for label, value in fields))
    return "\n".join(lines)


def _quoted(value: str) -> str:
    # AUTOMATIC1111 quotes values that would break its "Key: value, Key: value" line apart.
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
