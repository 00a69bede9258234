"""A fake Gemini Developer API ``generateContent`` with image output, for the real google-genai SDK.

``POST /{v1,v1beta}/models/{model}:generateContent`` with the key in ``x-goog-api-key``. The
request is checked against the research notes (../shared/research/providers.md section 2.2):
``contents`` of text and ``inlineData`` parts, ``responseModalities`` asking for IMAGE,
``imageConfig`` with a listed ``aspectRatio`` and an uppercase-K ``imageSize``, and nothing
that is Vertex-only. The answer carries ``inlineData`` parts (a real PNG in the asked ratio)
and ``usageMetadata``. Safety signals come back with HTTP 200, as Gemini sends them: a
``finishReason`` of IMAGE_SAFETY with no parts, a ``promptFeedback.blockReason``, or a reply
in words only. Imagen ids answer 404: Imagen is retired.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.fakes.provider_http import FakeServer, Fault, Received, png

API_KEY = "AIzaFakeGeminiKey0123456789"
RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
SIZES = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
IMAGE_TOKENS = 1290
_KNOWN_IMAGE_CONFIG = {"aspectRatio", "imageSize"}


def google_error(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


# --- faults and special answers a test can line up ------------------------------------------------
def resource_exhausted(retry_delay: str = "7s") -> Fault:
    message = "Resource has been exhausted (e.g. check quota)."
    return Fault(status=429, body=google_error(429, "RESOURCE_EXHAUSTED", message, [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generate_requests"}]},
    ]))


def server_error(status: int = 503) -> Fault:
    return Fault(status=status, body=google_error(status, "UNAVAILABLE", "The model is overloaded. Please try later."))


def safety_block() -> Fault:
    return Fault(status=200, body={"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}],
                                   "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}})


def prompt_blocked() -> Fault:
    return Fault(status=200, body={"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                                   "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}})


def text_only(text: str = "I can't create images of real people.") -> Fault:
    return Fault(status=200, body={"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                                   "finishReason": "STOP", "index": 0}]})


def malformed() -> Fault:
    return Fault(status=200, raw=b'{"candidates": [{"content": ')


class FakeGemini(FakeServer):
    """generateContent on 127.0.0.1; ``received`` holds every request, ``violations`` every broken rule."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.violations: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/models/{target}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        version, target = request.match_info["version"], request.match_info["target"]
        model, _, method = target.partition(":")
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload."), status=400)
        self.received.append(Received("POST", request.path, dict(request.headers), json=body))
        if request.headers.get("x-goog-api-key") != self.api_key:
            info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            message = "API key not valid. Please pass a valid API key."
            return web.json_response(google_error(400, "INVALID_ARGUMENT", message, [info]), status=400)
        if version not in ("v1", "v1beta") or method != "generateContent" or model.startswith("imagen"):
            return web.json_response(google_error(
                404, "NOT_FOUND", f"models/{model} is not found for API version {version}, or is not supported "
                                  f"for {method}."), status=404)
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        problems = _check(body)
        if problems:
            self.violations += problems
            return web.json_response(google_error(400, "INVALID_ARGUMENT", "; ".join(problems)), status=400)
        return web.json_response(_answer(model, body))


def _check(body: dict[str, Any]) -> list[str]:
    problems = []
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return ["contents: required"]
    for content in contents:
        for part in content.get("parts", []):
            if not ("text" in part or "inlineData" in part):
                problems.append(f"contents.parts: unknown part {sorted(part)}")
            inline = part.get("inlineData")
            # Proto JSON takes both spellings; google-genai 3.4 sends ``mime_type`` inside ``inlineData``.
            mime = inline.get("mimeType", inline.get("mime_type", "")) if inline is not None else ""
            if inline is not None and not (mime.startswith("image/") and inline.get("data")):
                problems.append("inlineData: needs mimeType and data")
    config = body.get("generationConfig", {})
    if "IMAGE" not in config.get("responseModalities", []):
        problems.append("generationConfig.responseModalities: must include IMAGE for image output")
    image = config.get("imageConfig", {})
    for key in set(image) - _KNOWN_IMAGE_CONFIG:
        problems.append(f"imageConfig.{key}: not supported by the Gemini Developer API")
    if image.get("aspectRatio", "1:1") not in RATIOS:
        problems.append(f"imageConfig.aspectRatio: '{image['aspectRatio']}' is not supported")
    if image.get("imageSize", "1K") not in SIZES:
        problems.append(f"imageConfig.imageSize: '{image['imageSize']}' (use 1K, 2K or 4K)")
    return problems


def _answer(model: str, body: dict[str, Any]) -> dict[str, Any]:
    image = body.get("generationConfig", {}).get("imageConfig", {})
    w, h = (int(x) for x in image.get("aspectRatio", "1:1").split(":"))
    side = SIZES[image.get("imageSize", "1K")] // 4  # small pictures keep the tests fast
    width, height = (side, side * h // w) if w >= h else (side * w // h, side)
    texts = [p["text"] for c in body["contents"] for p in c.get("parts", []) if "text" in p]
    data = base64.b64encode(png(width, height, " ".join(texts))).decode()
    prompt_tokens = sum(len(t.split()) for t in texts)
    return {
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is your picture."}, {"inlineData": {"mimeType": "image/png", "data": data}}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": IMAGE_TOKENS,
                          "totalTokenCount": prompt_tokens + IMAGE_TOKENS},
        "modelVersion": model,
    }
