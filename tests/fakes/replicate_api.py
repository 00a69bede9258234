"""A fake Replicate predictions API plus a separate file host, for the replicate provider's aiohttp client.

Routes as in the research notes (../shared/research/providers.md section 6): create through
``POST /v1/models/{owner}/{name}/predictions`` (official models) or ``POST /v1/predictions``
with ``version``; ``GET /v1/predictions/{id}``; ``POST /v1/predictions/{id}/cancel``; model and
version lookups. ``Authorization: Bearer`` is required on the API and recorded as a violation on
the file host (a second server on its own port, standing in for replicate.delivery, whose URLs
expire). Inputs are checked per model (flux-schnell, SDXL) and refused with RFC 7807 problem
JSON and ``invalid_fields`` (422). ``Prefer: wait=N`` must be 1-60.

Behaviour: with ``polls_to_finish`` = 0 a prediction is done within the sync wait; otherwise
it answers ``starting`` and walks starting -> processing (tqdm lines in ``logs``) -> succeeded
over that many polls. ``hold`` keeps it processing until cancelled; ``fail_with`` fails it with
that error; ``data_urls`` returns outputs inline; ``faults`` apply to creates.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web

from tests.fakes.provider_http import FakeServer, Received, png

TOKEN = "r8_FakeReplicateToken0123456789abcdef"
SDXL_VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
FLUX = "black-forest-labs/flux-schnell"
SDXL = "stability-ai/sdxl"
FLUX_RATIOS = {"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"}
INPUTS = {
    FLUX: {"prompt", "num_outputs", "aspect_ratio", "output_format", "output_quality", "seed", "go_fast",
           "num_inference_steps", "megapixels", "disable_safety_checker"},
    SDXL: {"prompt", "negative_prompt", "width", "height", "num_outputs", "num_inference_steps", "guidance_scale",
           "scheduler", "seed", "refine", "image", "prompt_strength", "mask", "apply_watermark"},
}
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"title": title, "detail": detail, "status": status, **extra}, status=status,
                             content_type="application/problem+json")


class _Files(FakeServer):
    """The stand-in for replicate.delivery: serves output files, no credentials wanted."""

    def __init__(self, owner: FakeReplicate) -> None:
        super().__init__()
        self.owner = owner
        self.store: dict[str, bytes] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{path:.*}", self._file)

    async def _file(self, request: web.Request) -> web.Response:
        self.received.append(Received("GET", request.path, dict(request.headers)))
        if "Authorization" in request.headers:
            self.owner.violations.append("the API token was sent to the file host")
        data = self.store.get(request.path)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")


class FakeReplicate(FakeServer):
    """Replicate's API on 127.0.0.1; ``received`` holds every API request, ``violations`` every broken rule."""

    def __init__(self, *, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.files = _Files(self)
        self.polls_to_finish = 0
        self.hold = False
        self.fail_with: str | None = None
        self.data_urls = False
        self.predict_time = 1.5
        self.violations: list[str] = []
        self.predictions: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)

    async def start(self) -> str:
        await self.files.start()
        return await super().start()

    async def close(self) -> None:
        await super().close()
        await self.files.close()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/models/{owner}/{name}/predictions", self._create)
        app.router.add_post("/v1/predictions", self._create)
        app.router.add_get("/v1/predictions/{id}", self._get)
        app.router.add_post("/v1/predictions/{id}/cancel", self._cancel)
        app.router.add_get("/v1/models/{owner}/{name}", self._model)
        app.router.add_get("/v1/models/{owner}/{name}/versions/{version}", self._model)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def _authorised(self, request: web.Request, body: Any = None) -> web.Response | None:
        self.received.append(Received(request.method, request.path, dict(request.headers), json=body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if (refused := self._authorised(request, body)) is not None:
            return refused
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        model = self._model_of(request, body)
        if model is None:
            if "version" in body:
                return problem(422, "Invalid version or not permitted",
                               "The specified version does not exist (or perhaps you don't have permission to use it?)")
            return problem(404, "Not found", "The requested resource could not be found.")
        prefer = request.headers.get("Prefer", "")
        if prefer and not (prefer == "wait" or (prefer.startswith("wait=") and 1 <= int(prefer[5:]) <= 60)):
            self.violations.append(f"Prefer must be wait or wait=1..60, not {prefer!r}")
        if (invalid := _invalid(model, body.get("input"))) is not None:
            return invalid
        number = next(self._ids)
        pid = f"pred{number:04d}"
        base = f"http://127.0.0.1:{self.port}/v1/predictions/{pid}"
        prediction: dict[str, Any] = {
            "id": pid, "model": model, "version": body.get("version", ""), "input": body["input"],
            "status": "starting", "output": None, "error": None, "logs": "", "data_removed": False,
            "created_at": "2026-01-01T12:00:00.000Z", "started_at": None, "completed_at": None,
            "urls": {"get": base, "cancel": f"{base}/cancel", "web": f"https://replicate.com/p/{pid}"},
            "metrics": {},
        }
        self.predictions[pid] = prediction
        self._polls[pid] = 0
        if self.polls_to_finish == 0 and not self.hold:
            self._finish(prediction)
        return web.json_response(prediction, status=201)

    def _model_of(self, request: web.Request, body: dict[str, Any]) -> str | None:
        if "owner" in request.match_info:
            model = f"{request.match_info['owner']}/{request.match_info['name']}"
            return model if model == FLUX else None
        version = str(body.get("version", "")).rpartition(":")[2]
        return SDXL if version == SDXL_VERSION else None

    async def _get(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if prediction["status"] in ("starting", "processing") and not self.hold:
            pid = prediction["id"]
            self._polls[pid] += 1
            polls = self._polls[pid]
            if polls >= self.polls_to_finish:
                self._finish(prediction)
            else:
                percent = 100 * polls // self.polls_to_finish
                bar, step = "#" * (percent // 10), polls * 4 // self.polls_to_finish
                prediction["status"] = "processing"
                prediction["logs"] += f"{percent:3d}%|{bar:<10}| {step}/4 [00:01<00:01, 2.5it/s]\n"
        elif self.hold and prediction["status"] == "starting":
            prediction["status"] = "processing"
        return web.json_response(prediction)

    async def _cancel(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if prediction["status"] not in ("succeeded", "failed", "canceled"):
            prediction["status"] = "canceled"
        return web.json_response(prediction)

    async def _model(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        version = request.match_info.get("version")
        if model not in INPUTS or (version is not None and (model != SDXL or version != SDXL_VERSION)):
            return problem(404, "Not found", "The requested resource could not be found.")
        return web.json_response({"owner": model.split("/")[0], "name": model.split("/")[1], "id": version or ""})

    def _finish(self, prediction: dict[str, Any]) -> None:
        prediction["completed_at"] = "2026-01-01T12:00:02.000Z"
        if self.fail_with is not None:
            prediction.update(status="failed", error=self.fail_with)
            return
        given = prediction["input"]
        count = int(given.get("num_outputs", 1))
        if "aspect_ratio" in given:
            w, h = (int(x) for x in given["aspect_ratio"].split(":"))
            width, height = (128, 128 * h // w) if w >= h else (128 * w // h, 128)
        else:
            width, height = int(given.get("width", 1024)) // 8, int(given.get("height", 1024)) // 8
        outputs = []
        for i in range(count):
            data = png(width, height, f"{given['prompt']}|{given.get('seed')}|{i}")
            if self.data_urls:
                outputs.append("data:image/png;base64," + base64.b64encode(data).decode())
            else:
                path = f"/yhqm/{prediction['id']}/out-{i}.png"
                self.files.store[path] = data
                outputs.append(f"http://127.0.0.1:{self.files.port}{path}")
        prediction.update(status="succeeded", output=outputs, logs=prediction["logs"] + "100%|##########| 4/4\n",
                          metrics={"predict_time": self.predict_time, "total_time": self.predict_time + 0.5})


def _invalid(model: str, given: Any) -> web.Response | None:
    if not isinstance(given, dict) or not isinstance(given.get("prompt"), str):
        return problem(422, "Input validation failed", "- input: prompt is required",
                       invalid_fields=[{"type": "required", "field": "input.prompt", "description": "required"}])
    fields = []
    for name in given:
        if name not in INPUTS[model]:
            fields.append({"type": "additional_property_not_allowed", "field": f"input.{name}",
                           "description": f"Additional property {name} is not allowed"})
    if model == FLUX:
        if given.get("aspect_ratio", "1:1") not in FLUX_RATIOS:
            fields.append({"type": "enum", "field": "input.aspect_ratio",
                           "description": f"input.aspect_ratio must be one of {sorted(FLUX_RATIOS)}"})
        if not 1 <= int(given.get("num_outputs", 1)) <= 4:
            fields.append({"type": "number_one_of", "field": "input.num_outputs", "description": "must be 1-4"})
    if fields:
        detail = "\n".join(f"- {f['field']}: {f['description']}" for f in fields)
        return problem(422, "Input validation failed", detail, invalid_fields=fields)
    return None
