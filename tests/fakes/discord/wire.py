"""Reading requests and writing responses the way Discord does."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web


@dataclass
class Upload:
    field: str
    filename: str
    data: bytes


@dataclass
class Body:
    json: Any = None
    files: list[Upload] = field(default_factory=list)
    multipart: bool = False


async def read_body(request: web.Request) -> Body:
    if request.content_type.startswith("multipart/"):
        body = Body(multipart=True)
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # discord.py never nests multipart bodies
            data = await part.read()
            if part.name == "payload_json":
                body.json = json.loads(data)
            else:
                body.files.append(Upload(part.name or "", part.filename or "file", bytes(data)))
        return body
    raw = await request.read()
    return Body(json=json.loads(raw) if raw else None)


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header for equality (no charset).
    all_headers = {"Via": "1.1 google", **(headers or {})}
    if body is None:
        return web.Response(status=status, headers=all_headers)
    all_headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


@dataclass(frozen=True)
class RouteSpec:
    method: str
    template: str
    handler: str
    regex: re.Pattern[str]

    @classmethod
    def of(cls, method: str, template: str, handler: str) -> RouteSpec:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template.replace("@", "@"))
        return cls(method, template, handler, re.compile(f"^{pattern}$"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"
