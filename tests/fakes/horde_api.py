"""A fake AI Horde image API (``/api/v2``) plus an R2-like file host, for the horde provider's aiohttp client.

Shapes from the Horde's own models (Haidra-Org/AI-Horde ``horde/apis/models``): ``POST
/generate/async`` answers 202 ``{"id", "kudos"}``; ``GET /generate/check/{id}`` answers
``RequestStatusCheck`` (finished, processing, restarted, waiting, done, faulted, wait_time,
queue_position, kudos, is_possible); ``GET /generate/status/{id}`` adds ``generations`` (img as an
R2 URL or base64 WEBP, seed as a string, censored, model, worker, gen_metadata);
``DELETE /generate/status/{id}`` withdraws the request. Errors are ``{"message", "rc"}``:
InvalidAPIKey (401), KudosUpfront (403, anonymous users asking for big or long jobs),
CorruptPrompt (400), InvalidSize (400, sides not multiples of 64), RequestNotFound (404).
Requests are checked: the ``apikey`` header, a "name:version:contact" ``Client-Agent``, seeds
as strings, cfg rounded to 2 decimals, source images as WEBP. The file host records a
violation if the API key is sent to it.

A request waits ``queue_checks`` checks (its position and ETA shrinking), is processed for one
check, then is done; ``hold`` keeps it waiting, ``impossible`` says no worker can serve it,
``censor`` has the workers censor every image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.provider_http import FakeServer, Received

API_KEY = "hordeKey-0123456789abcdefXYZ"
ANONYMOUS = "0000000000"
SAMPLERS = {"k_lms", "k_heun", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_2m", "DDIM"}
BANNED = "forbidden-topic"


def webp(width: int, height: int, seed: str) -> bytes:
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    out = io.BytesIO()
    Image.new("RGB", (width, height), (r, g, b)).save(out, "WEBP")
    return out.getvalue()


def horde_error(status: int, message: str, rc: str) -> web.Response:
    return web.json_response({"message": message, "rc": rc}, status=status)


@dataclass
class _Request:
    id: str
    body: dict[str, Any]
    anonymous: bool
    checks_left: int
    processing: bool = False
    done: bool = False
    cancelled: bool = False
    generations: list[dict[str, Any]] = field(default_factory=list)


class _Files(FakeServer):
    def __init__(self, owner: FakeHorde) -> None:
        super().__init__()
        self.owner = owner
        self.store: dict[str, bytes] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{path:.*}", self._file)

    async def _file(self, request: web.Request) -> web.Response:
        self.received.append(Received("GET", request.path, dict(request.headers)))
        if "apikey" in request.headers:
            self.owner.violations.append("the API key was sent to the file host")
        data = self.store.get(request.path)
        return web.Response(body=data, content_type="image/webp") if data else web.Response(status=404)


class FakeHorde(FakeServer):
    """The Horde on 127.0.0.1; ``received`` holds every API request, ``violations`` every broken rule."""

    def __init__(self) -> None:
        super().__init__()
        self.files = _Files(self)
        self.keys = {API_KEY: {"username": "imaginebot#4242", "kudos": 1500.0}}
        self.queue_checks = 2
        self.hold = False
        self.impossible = False
        self.censor = False
        self.violations: list[str] = []
        self.requests: dict[str, _Request] = {}
        #: One-shot answers for the next /check calls (e.g. a 429), before the normal one.
        self.check_faults: list[web.Response] = []

    async def start(self) -> str:
        await self.files.start()
        return await super().start()

    async def close(self) -> None:
        await super().close()
        await self.files.close()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/generate/async", self._submit)
        app.router.add_get("/api/v2/generate/check/{id}", self._check)
        app.router.add_get("/api/v2/generate/status/{id}", self._status)
        app.router.add_delete("/api/v2/generate/status/{id}", self._delete)
        app.router.add_get("/api/v2/status/heartbeat", self._heartbeat)
        app.router.add_get("/api/v2/find_user", self._find_user)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.received if method is None or r.method == method]

    def _record(self, request: web.Request, body: Any = None) -> None:
        self.received.append(Received(request.method, request.path, dict(request.headers), json=body))
        agent = request.headers.get("Client-Agent", "")
        if agent.count(":") < 2:
            self.violations.append(f"Client-Agent should be name:version:contact, not {agent!r}")

    def _key(self, request: web.Request) -> str | web.Response:
        key = request.headers.get("apikey", "")
        if key != ANONYMOUS and key not in self.keys:
            return horde_error(401, "No user matching sent API Key. Have you remembered to register at "
                                    "https://aihorde.net/register ?", "InvalidAPIKey")
        return key

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        key = self._key(request)
        if isinstance(key, web.Response):
            return key
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        if (problem := self._validate(body, anonymous=key == ANONYMOUS)) is not None:
            return problem
        params = body.get("params", {})
        horde_request = _Request(id=str(uuid.uuid4()), body=body, anonymous=key == ANONYMOUS,
                                 checks_left=self.queue_checks)
        self.requests[horde_request.id] = horde_request
        kudos = round(params.get("steps", 30) * params.get("n", 1) * 0.4)
        return web.json_response({"id": horde_request.id, "kudos": kudos}, status=202)

    def _validate(self, body: dict[str, Any], *, anonymous: bool) -> web.Response | None:
        prompt, params = body.get("prompt"), body.get("params", {})
        if not isinstance(prompt, str) or not prompt:
            return horde_error(400, "You cannot specify an empty prompt.", "MissingPrompt")
        if BANNED in prompt.split("###")[0]:
            return horde_error(400, "This prompt appears to violate our terms of service and will be reported. "
                                    "Please contact us if you think this is an error.", "CorruptPrompt")
        if params.get("width", 512) % 64 or params.get("height", 512) % 64:
            return horde_error(400, "Invalid size. The image dimensions have to be multiples of 64.", "InvalidSize")
        if not isinstance(params.get("seed", ""), str):
            self.violations.append("params.seed is a string")
        if params.get("sampler_name", "k_euler_a") not in SAMPLERS:
            return web.json_response({"errors": {"params.sampler_name": "not one of the samplers"},
                                      "message": "Input payload validation failed"}, status=400)
        cfg = params.get("cfg_scale", 7.5)
        if round(cfg, 2) != cfg:
            return horde_error(400, "cfg_scale must be rounded to 2 decimal places", "BadCFGDecimals")
        if not 1 <= params.get("n", 1) <= 20:
            self.violations.append("params.n is 1-20")
        if "source_image" in body:
            try:
                data = base64.b64decode(body["source_image"], validate=True)
            except ValueError:
                data = b""
            if data[8:12] != b"WEBP":
                return horde_error(400, "Image validation failed. Please ensure the source image payload is "
                                        "a valid base64 encoded image.", "ImageValidationFailed")
        big = params.get("width", 512) * params.get("height", 512) > 1024 * 1024 or params.get("steps", 30) > 50
        if anonymous and big:
            return horde_error(403, "Due to heavy demand, for requests over 1024x1024 or over 50 steps the client "
                                    "needs to already have the required kudos. This request requires 74 kudos.",
                               "KudosUpfront")
        return None

    def _lookup(self, request: web.Request) -> _Request | web.Response:
        found = self.requests.get(request.match_info["id"])
        if found is None:
            return horde_error(404, f"Waiting Prompt with ID '{request.match_info['id']}' not found.",
                               "RequestNotFound")
        return found

    async def _check(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.check_faults:
            return self.check_faults.pop(0)
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        self._advance(found)
        return web.json_response(self._lite(found))

    def _advance(self, found: _Request) -> None:
        if found.done or found.cancelled or self.hold or self.impossible:
            return
        if found.checks_left > 0:
            found.checks_left -= 1
        elif not found.processing:
            found.processing = True
        else:
            self._finish(found)

    def _finish(self, found: _Request) -> None:
        params, body = found.body.get("params", {}), found.body
        width, height = params.get("width", 512) // 8, params.get("height", 512) // 8
        seed = params.get("seed", "1")
        for i in range(params.get("n", 1)):
            data = webp(width, height, f"{body['prompt']}|{seed}|{i}")
            generation_id = str(uuid.uuid4())
            if body.get("r2", True):
                path = f"/r2/{generation_id}.webp"
                self.files.store[path] = data
                img = f"http://127.0.0.1:{self.files.port}{path}"
            else:
                img = base64.b64encode(data).decode()
            metadata = [{"type": "censorship", "value": "nsfw"}] if self.censor else []
            found.generations.append({
                "img": img, "seed": str(int(seed) + i) if seed.isdigit() else seed, "id": generation_id,
                "censored": self.censor, "gen_metadata": metadata, "worker_id": "w-1", "worker_name": "fake-gpu",
                "model": (body.get("models") or ["stable_diffusion"])[0], "state": "ok",
            })
        found.processing, found.done = False, True

    def _lite(self, found: _Request) -> dict[str, Any]:
        n = found.body.get("params", {}).get("n", 1)
        waiting = 0 if (found.done or found.processing or found.cancelled) else n
        return {
            "finished": len(found.generations), "processing": n if found.processing else 0, "restarted": 0,
            "waiting": waiting, "done": found.done, "faulted": False,
            "wait_time": 0 if found.done else 10 * (found.checks_left + 1),
            "queue_position": found.checks_left if waiting else 0,
            "kudos": 12.0 * n if found.done else 0.0, "is_possible": not self.impossible,
        }

    async def _status(self, request: web.Request) -> web.Response:
        self._record(request)
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response({**self._lite(found), "generations": found.generations, "shared": False})

    async def _delete(self, request: web.Request) -> web.Response:
        self._record(request)
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        found.cancelled = True
        return web.json_response({**self._lite(found), "generations": found.generations, "shared": False})

    async def _heartbeat(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"message": "OK", "version": "4.44.0"})

    async def _find_user(self, request: web.Request) -> web.Response:
        self._record(request)
        key = self._key(request)
        if isinstance(key, web.Response):
            return key
        user = self.keys.get(key, {"username": "Anonymous#0", "kudos": 0.0})
        return web.json_response({**user, "id": 4242, "concurrency": 30, "worker_count": 0})
