"""A fake OpenRouter chat-completions endpoint with image output, for the real openai SDK.

``POST /api/v1/chat/completions`` with ``modalities`` including "image": the answer's
``choices[0].message.images`` holds ``{"type": "image_url", "image_url": {"url": "data:..."}}``
entries, as OpenRouter documents (../shared/research/providers.md section 3.2). Checked: the
Bearer key, ``model``, ``messages`` with text and ``image_url`` parts (data URLs), the
modalities, and ``image_config.aspect_ratio`` from the list. Errors use OpenRouter's body
``{"error": {"code": int, "message": str, "metadata": {...}}}``: 402 for no credits, 403 for
moderation (with reasons), and the "HTTP 200 with an error body" of a model that failed midway.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from tests.fakes.provider_http import FakeServer, Fault, Received, png

API_KEY = "sk-or-v1-fake-openrouter-key-0123"
RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
COMPLETION_TOKENS = 1300


def openrouter_error(code: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "metadata": metadata or {}}}


# --- faults a test can line up ------------------------------------------------------------------
def moderation(reasons: tuple[str, ...] = ("violence",)) -> Fault:
    return Fault(status=403, body=openrouter_error(403, "Input was flagged by moderation", {
        "reasons": list(reasons), "flagged_input": "…", "provider_name": "google", "model_slug": "gemini"}))


def no_credits() -> Fault:
    return Fault(status=402, body=openrouter_error(402, "Insufficient credits. Add more using https://openrouter.ai/credits"))


def rate_limited(retry_after: float = 1.0) -> Fault:
    return Fault(status=429, body=openrouter_error(429, "Rate limit exceeded"),
                 headers={"Retry-After": f"{retry_after:g}"})


def upstream_down() -> Fault:
    return Fault(status=502, body=openrouter_error(502, "Provider returned error"))


def failed_midway() -> Fault:
    return Fault(status=200, body=openrouter_error(502, "Upstream model crashed while generating"))


def malformed() -> Fault:
    return Fault(status=200, raw=b'{"id": "gen-1", "choices": [')


class FakeOpenRouter(FakeServer):
    """Chat completions with images on 127.0.0.1; ``violations`` lists every broken rule."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.violations: list[str] = []

    async def start(self) -> str:
        return await super().start() + "/api/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/chat/completions", self._completions)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(openrouter_error(400, "Invalid JSON"), status=400)
        self.received.append(Received("POST", request.path, dict(request.headers), json=body))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(openrouter_error(401, "No auth credentials found"), status=401)
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        problems = _check(body)
        if problems:
            self.violations += problems
            return web.json_response(openrouter_error(400, "; ".join(problems)), status=400)
        return web.json_response(_answer(body))


def _check(body: dict[str, Any]) -> list[str]:
    problems = []
    if not body.get("model"):
        problems.append("model: required")
    if "image" not in body.get("modalities", []):
        problems.append("modalities: must include image for image output")
    ratio = body.get("image_config", {}).get("aspect_ratio", "1:1")
    if ratio not in RATIOS:
        problems.append(f"image_config.aspect_ratio: '{ratio}' is not supported")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: required"]
    for message in messages:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if part.get("type") == "image_url":
                if not str(part.get("image_url", {}).get("url", "")).startswith("data:image/"):
                    problems.append("image_url: expected a data URL")
            elif part.get("type") != "text":
                problems.append(f"content: unknown part type {part.get('type')}")
    return problems


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    w, h = (int(x) for x in body.get("image_config", {}).get("aspect_ratio", "1:1").split(":"))
    width, height = (256, 256 * h // w) if w >= h else (256 * w // h, 256)
    texts = [str(m.get("content")) for m in body["messages"]]
    url = "data:image/png;base64," + base64.b64encode(png(width, height, " ".join(texts))).decode()
    prompt_tokens = sum(len(t.split()) for t in texts)
    return {
        "id": "gen-fake-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Here is your image.",
            "images": [{"type": "image_url", "image_url": {"url": url}}]}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": prompt_tokens + COMPLETION_TOKENS},
    }
