"""A fake OpenAI Images API, and xAI's OpenAI-compatible one (``flavour="xai"``), for the real openai SDK.

Routes (under ``/v1``, the SDK's base URL): ``POST /images/generations`` (JSON, or SSE partial
images with ``stream: true``) and, for OpenAI, ``POST /images/edits`` (multipart ``image`` or
``image[]`` parts plus an optional ``mask``) and ``POST /moderations`` (checked against
``CreateModerationRequest``; a text with a word from :data:`MODERATION_WORDS` is flagged).
OpenAI requests are checked against ``CreateImageRequest`` / ``CreateImageEditRequest`` in the
OpenAPI document, and every answer the fake sends is checked against ``ImagesResponse``, the
stream event schemas and ``ErrorResponse``; on top come the rules the research notes give (GPT models refuse
``response_format``; sizes per model; retired models answer ``model_not_found``; a mask is a
PNG the size of the image). Any violation is recorded in ``violations`` and answered with 400.

xAI is checked against its own notes instead: no ``size`` or ``style``, ``aspect_ratio`` and
``resolution`` from its lists, answers with ``mime_type`` and ``usage.cost_in_usd_ticks``, and
``b64_json`` given as a data URL (as an older xAI example shows).
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any, Literal

from aiohttp import web
from multidict import MultiDictProxy
from PIL import Image

from tests.fakes import openai_spec
from tests.fakes.provider_http import FakeServer, Fault, Received, png, sse

API_KEY = "sk-test-fake-key-0123456789abcdef"
RETIRED = {"dall-e-2": "2026-05-12", "dall-e-3": "2026-05-12"}
FIXED_SIZES = {"auto", "1024x1024", "1536x1024", "1024x1536"}
XAI_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1",
              "auto"}
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}
IMAGE_INPUT_TOKENS = 194
#: What an xAI image costs in the fake, in xAI's "ticks".
XAI_TICKS = 200_000_000
#: Words the fake moderation endpoint flags, with the categories they fire.
MODERATION_WORDS = {"kill": ("violence", "harassment/threatening"), "gore": ("violence/graphic",)}
MODERATION_CATEGORIES = (
    "hate", "hate/threatening", "harassment", "harassment/threatening", "illicit", "illicit/violent", "self-harm",
    "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
)


def error_body(message: str, *, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- faults a test can line up ------------------------------------------------------------------
def rate_limited(retry_after: float = 1.0) -> Fault:
    body = error_body("Rate limit reached for gpt-image in organization org-x on images per min (IPM): Limit 5.",
                      kind="requests", code="rate_limit_exceeded")
    return Fault(status=429, body=body, headers={"retry-after": f"{retry_after:g}"})


def server_error(status: int = 500) -> Fault:
    return Fault(status=status, body=error_body("The server had an error while processing your request.",
                                                kind="server_error", code=None))


def moderation() -> Fault:
    body = error_body("Your request was rejected by the safety system. safety_violations=[violence].",
                      kind="image_generation_user_error", code="moderation_blocked")
    body["error"]["moderation_details"] = {"moderation_stage": "input", "categories": ["violence"]}
    return Fault(status=400, body=body)


def quota() -> Fault:
    return Fault(status=429, body=error_body(
        "You exceeded your current quota, please check your plan and billing details.",
        kind="insufficient_quota", code="insufficient_quota"))


def malformed() -> Fault:
    return Fault(status=200, raw=b'{"created": 1713833628, "data": [{"b64_json": ')


def hang(seconds: float = 5.0) -> Fault:
    return Fault(delay=seconds, status=200, body={"created": 0, "data": []})


class FakeOpenAI(FakeServer):
    """The Images API on 127.0.0.1; ``received`` holds every request, ``violations`` every broken rule."""

    def __init__(self, *, api_key: str = API_KEY, flavour: Literal["openai", "xai"] = "openai",
                 partial_delay: float = 0.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.flavour = flavour
        self.violations: list[str] = []
        #: Sent as ``data: {"error": ...}`` after the first partial image, once.
        self.stream_error: dict[str, Any] | None = None
        #: Seconds between streamed events, so a test can watch previews arrive.
        self.partial_delay = partial_delay

    async def start(self) -> str:
        if self.flavour == "openai":
            openai_spec.load()
        return await super().start() + "/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_get("/v1/models/{model}", self._model)
        if self.flavour == "openai":
            app.router.add_post("/v1/images/edits", self._edits)
            app.router.add_post("/v1/moderations", self._moderations)

    # --- handlers ---------------------------------------------------------------------------
    async def _generations(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.", code=None)
        self.received.append(Received("POST", request.path, dict(request.headers), json=body))
        early = await self._auth_and_faults(request)
        if early is not None:
            return early
        problems = self._check_xai(body) if self.flavour == "xai" else self._check_generation(body)
        if problems:
            return self._invalid(problems)
        if body.get("stream"):
            return await self._stream(request, body, "image_generation", inputs=0)
        return self._answer(body, inputs=0)

    async def _moderations(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.", code=None)
        self.received.append(Received("POST", request.path, dict(request.headers), json=body))
        early = await self._auth_and_faults(request)
        if early is not None:
            return early
        problems = openai_spec.problems("CreateModerationRequest", body)
        if problems:
            return self._invalid(problems)
        given = body["input"]
        texts = [given] if isinstance(given, str) else [t if isinstance(t, str) else t.get("text", "") for t in given]
        answer = {"id": "modr-fake", "model": body.get("model", "omni-moderation-latest"),
                  "results": [_moderation(text) for text in texts]}
        self._check_answer("CreateModerationResponse", answer)
        return web.json_response(answer)

    async def _model(self, request: web.Request) -> web.StreamResponse:
        """``GET /models/{id}``: what a health check asks; retired models are not found."""
        model = request.match_info["model"]
        self.received.append(Received("GET", request.path, dict(request.headers)))
        early = await self._auth_and_faults(request)
        if early is not None:
            return early
        if model in RETIRED:
            return self._error(404, f"The model `{model}` does not exist or you do not have access to it.",
                               code="model_not_found")
        return web.json_response({"id": model, "object": "model", "created": 1700000000, "owned_by": "system"})

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/form-data"):
            return self._error(400, "Expected multipart/form-data.", code=None)
        form = await request.post()
        scalars, files = _split_form(form)
        self.received.append(Received("POST", request.path, dict(request.headers), form=scalars, files=files))
        early = await self._auth_and_faults(request)
        if early is not None:
            return early
        problems = self._check_edit(scalars, files)
        if problems:
            return self._invalid(problems)
        body: dict[str, Any] = {**scalars, "n": int(scalars.get("n", "1"))}
        if "partial_images" in scalars:
            body["partial_images"] = int(scalars["partial_images"])
        inputs = len(files.get("image", []) + files.get("image[]", []))
        if scalars.get("stream") == "true":
            return await self._stream(request, body, "image_edit", inputs=inputs)
        return self._answer(body, inputs=inputs)

    async def _auth_and_faults(self, request: web.Request) -> web.StreamResponse | None:
        given = request.headers.get("Authorization", "")
        if given != f"Bearer {self.api_key}":
            key = given.removeprefix("Bearer ")
            # As OpenAI does: the message echoes a masked key (providers must not pass even that on).
            shown = f"{key[:6]}{'*' * 8}{key[-4:]}" if len(key) > 10 else "***"
            return self._error(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                                    "https://platform.openai.com/account/api-keys.", code="invalid_api_key",
                               kind="invalid_request_error")
        fault = self.next_fault()
        return await fault.respond(request) if fault is not None else None

    # --- rules ------------------------------------------------------------------------------
    def _check_generation(self, body: dict[str, Any]) -> list[str]:
        problems = openai_spec.problems("CreateImageRequest", body)
        model = str(body.get("model") or "dall-e-2")
        if "response_format" in body:
            problems.append("response_format: not supported for the GPT image models")
        problems += self._common_rules(body, model)
        size = str(body.get("size", "auto"))
        if size not in FIXED_SIZES and not (model.startswith("gpt-image-2") and _free_size_ok(size)):
            problems.append(f"size: '{size}' is not a size {model} accepts")
        return problems

    def _check_edit(self, scalars: dict[str, str], files: dict[str, list[bytes]]) -> list[str]:
        images = files.get("image", []) + files.get("image[]", [])
        instance: dict[str, Any] = {k: _typed(k, v) for k, v in scalars.items()}
        if images:
            instance["image"] = "<binary>" if "image" in files else ["<binary>"] * len(images)
        if "mask" in files:
            instance["mask"] = "<binary>"
        problems = openai_spec.problems("CreateImageEditRequest", instance)
        problems += self._common_rules(instance, str(scalars.get("model") or "gpt-image-1.5"))
        sizes = []
        for data in images:
            try:
                with Image.open(io.BytesIO(data)) as im:
                    sizes.append(im.size)
                    if im.format not in ("PNG", "WEBP", "JPEG"):
                        problems.append(f"image: {im.format} is not png, webp or jpg")
            except OSError:
                problems.append("image: not an image file")
        for data in files.get("mask", []):
            with Image.open(io.BytesIO(data)) as im:
                if im.format != "PNG" or im.mode not in ("RGBA", "LA"):
                    problems.append("mask: must be a PNG with an alpha channel")
                if sizes and im.size != sizes[0]:
                    problems.append(f"mask: size {im.size} differs from the image's {sizes[0]}")
        return problems

    def _common_rules(self, body: dict[str, Any], model: str) -> list[str]:
        problems = []
        if model in RETIRED:
            problems.append(f"retired:{model}")
        if body.get("background") == "transparent" and body.get("output_format", "png") == "jpeg":
            problems.append("background: transparent needs png or webp")
        if body.get("output_compression") not in (None, 100) and body.get("output_format", "png") == "png":
            problems.append("output_compression: only for jpeg and webp")
        return problems

    def _check_xai(self, body: dict[str, Any]) -> list[str]:
        problems = [f"{key}: not supported" for key in ("size", "style") if key in body]
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            problems.append("prompt: required")
        if body.get("aspect_ratio", "auto") not in XAI_RATIOS:
            problems.append(f"aspect_ratio: '{body['aspect_ratio']}' is not supported")
        if body.get("resolution", "1k") not in ("1k", "2k"):
            problems.append("resolution: 1k or 2k")
        if body.get("quality", "medium") not in ("low", "medium", "high"):
            problems.append("quality: low, medium or high")
        if not 1 <= int(body.get("n", 1)) <= 10:
            problems.append("n: 1 to 10")
        return problems

    def _invalid(self, problems: list[str]) -> web.Response:
        self.violations += problems
        retired = [p for p in problems if p.startswith("retired:")]
        if retired:
            model = retired[0].partition(":")[2]
            return self._error(400, f"The model `{model}` has been deprecated, learn more here: "
                                    "https://platform.openai.com/docs/deprecations", code="model_not_found")
        return self._error(400, "Invalid request: " + "; ".join(problems), code="invalid_value")

    # --- answers ----------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any], *, inputs: int) -> web.Response:
        n = int(body.get("n") or 1)
        width, height = self._size(body)
        prompt = str(body.get("prompt", ""))
        if self.flavour == "xai":
            mime = "image/png"
            datas = [_b64(png(width, height, f"{prompt}:{i}")) for i in range(n)]
            return web.json_response({
                "data": [{"url": None, "b64_json": f"data:{mime};base64,{d}", "mime_type": mime, "revised_prompt": ""}
                         for d in datas],
                "usage": {"cost_in_usd_ticks": XAI_TICKS * n}, "block_reason": None,
            })
        answer = {
            "created": int(time.time()),
            "data": [{"b64_json": _b64(png(width, height, f"{prompt}:{i}", alpha=_clear(body)))} for i in range(n)],
            "background": "transparent" if _clear(body) else "opaque",
            "output_format": body.get("output_format", "png"),
            "quality": _quality(body) if _quality(body) != "auto" else "medium",
            "usage": self._usage(body, n, inputs),
        }
        if f"{width}x{height}" in FIXED_SIZES:
            answer["size"] = f"{width}x{height}"
        self._check_answer("ImagesResponse", answer)
        return web.json_response(answer)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], prefix: str, *, inputs: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        n = int(body.get("n") or 1)
        width, height = self._size(body)
        schema = "ImageGenPartialImageEvent" if prefix == "image_generation" else "ImageEditPartialImageEvent"
        size = f"{width}x{height}" if f"{width}x{height}" in FIXED_SIZES else "auto"
        common = {"created_at": int(time.time()), "size": size, "quality": _quality(body),
                  "background": "transparent" if _clear(body) else "opaque",
                  "output_format": body.get("output_format", "png")}
        for i in range(n):
            for index in range(int(body.get("partial_images") or 0)):
                if self.partial_delay:
                    await asyncio.sleep(self.partial_delay)
                event = {"type": f"{prefix}.partial_image", "b64_json": _b64(png(width, height, f"partial{index}")),
                         **common, "partial_image_index": index}
                self._check_answer(schema, event)
                await response.write(sse(event["type"], event))
                if self.stream_error is not None:
                    error, self.stream_error = self.stream_error, None
                    await response.write(sse(None, {"error": error}))
                    await response.write_eof()
                    return response
            done = {"type": f"{prefix}.completed", "b64_json": _b64(png(width, height, f"{body['prompt']}:{i}")),
                    **common, "usage": self._usage(body, 1, inputs)}
            self._check_answer(schema.replace("PartialImage", "Completed"), done)
            await response.write(sse(done["type"], done))
        await response.write_eof()
        return response

    def _usage(self, body: dict[str, Any], n: int, inputs: int) -> dict[str, Any]:
        width, height = self._size(body)
        per_image = OUTPUT_TOKENS[_quality(body)] * (1 if width == height else 3) // (1 if width == height else 2)
        text = len(str(body.get("prompt", "")).split())
        image_in = IMAGE_INPUT_TOKENS * inputs
        out = per_image * n
        return {
            "input_tokens": text + image_in, "output_tokens": out, "total_tokens": text + image_in + out,
            "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
            "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
        }

    def _size(self, body: dict[str, Any]) -> tuple[int, int]:
        if self.flavour == "xai":
            ratio = str(body.get("aspect_ratio", "1:1"))
            w, h = (float(x) for x in ratio.split(":")) if ratio != "auto" else (1.0, 1.0)
            side = 1024 if body.get("resolution", "1k") == "1k" else 2048
            return (side, round(side * h / w / 16) * 16) if w >= h else (round(side * w / h / 16) * 16, side)
        size = str(body.get("size", "auto"))
        if size == "auto":
            return 1024, 1024
        w, _, h = size.partition("x")
        return int(w), int(h)

    def _error(
        self, status: int, message: str, *, code: str | None, kind: str = "invalid_request_error"
    ) -> web.Response:
        body = error_body(message, kind=kind, code=code)
        if self.flavour == "openai":
            self._check_answer("ErrorResponse", body)
        return web.json_response(body, status=status)

    def _check_answer(self, schema: str, answer: Any) -> None:
        found = openai_spec.problems(schema, answer)
        assert not found, f"the fake's own {schema} breaks the spec: {found}"


def _moderation(text: str) -> dict[str, Any]:
    fired = {c for word in text.lower().split() for c in MODERATION_WORDS.get(word.strip(".,!?"), ())}
    return {
        "flagged": bool(fired),
        "categories": {c: c in fired for c in MODERATION_CATEGORIES},
        "category_scores": {c: 0.93 if c in fired else 0.002 for c in MODERATION_CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
    }


def _split_form(form: MultiDictProxy[Any]) -> tuple[dict[str, str], dict[str, list[bytes]]]:
    scalars: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files.setdefault(key, []).append(value.file.read())
        else:
            scalars[key] = str(value)
    return scalars, files


def _typed(key: str, value: str) -> Any:
    """A multipart field as the JSON value the schema describes."""
    if key in ("n", "output_compression", "partial_images"):
        return int(value) if value.lstrip("-").isdigit() else value
    if key == "stream":
        return {"true": True, "false": False}.get(value, value)
    return value


def _free_size_ok(size: str) -> bool:
    """gpt-image-2's rule: WxH, multiples of 16, ratio at most 3:1, at most 3840x2160 pixels."""
    w, sep, h = size.partition("x")
    if not (sep and w.isdigit() and h.isdigit()):
        return False
    width, height = int(w), int(h)
    return (width % 16 == 0 and height % 16 == 0 and max(width, height) <= 3 * min(width, height)
            and width * height <= 3840 * 2160)


def _quality(body: dict[str, Any]) -> str:
    return str(body.get("quality") or "auto")


def _clear(body: dict[str, Any]) -> bool:
    return body.get("background") == "transparent"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
