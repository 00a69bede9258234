"""Hand-written contracts for the Web API methods the official spec lacks.

``../shared/specs/slack/slack_web_openapi_v2.json`` stopped in 2020: it has no
``files.getUploadURLExternal``, ``files.completeUploadExternal`` or ``apps.connections.open``.
These follow the docs.slack.dev method pages (see research/platforms.md §6-7) in the spec's own
shape (Swagger 2.0 parameters, response schemas), so one checker reads both.
"""

from __future__ import annotations

from typing import Any


def _param(name: str, kind: str = "string", required: bool = False, where: str = "formData") -> dict[str, Any]:
    return {"name": name, "in": where, "type": kind, "required": required}


_TOKEN = _param("token", required=True, where="header")
_OK_FALSE = {
    "type": "object", "required": ["ok", "error"],
    "properties": {"ok": {"enum": [False]}, "error": {"type": "string"}},
}
_FILE_ID = {"type": "string", "pattern": "^F[A-Z0-9]{8,}$"}

OPERATIONS: dict[str, dict[str, Any]] = {
    # docs.slack.dev/reference/methods/files.getUploadURLExternal: Tier 4, files:write.
    "files.getUploadURLExternal": {
        "parameters": [
            _TOKEN, _param("filename", required=True), _param("length", "integer", required=True),
            _param("alt_txt"), _param("snippet_type"),
        ],
        "responses": {
            "200": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["ok", "upload_url", "file_id"],
                "properties": {"ok": {"enum": [True]}, "upload_url": {"type": "string", "format": "uri"},
                               "file_id": _FILE_ID},
            }},
            "default": {"schema": _OK_FALSE},
        },
    },
    # docs.slack.dev/reference/methods/files.completeUploadExternal: Tier 4, files:write.
    # ``files`` is a JSON string of [{"id", "title"?}]; ``thread_ts`` only with ``channel_id``.
    "files.completeUploadExternal": {
        "parameters": [
            _TOKEN, _param("files", required=True), _param("channel_id"), _param("channels"),
            _param("initial_comment"), _param("thread_ts"), _param("blocks"),
        ],
        "responses": {
            "200": {"schema": {
                "type": "object", "required": ["ok", "files"],
                "properties": {"ok": {"enum": [True]}, "files": {
                    "type": "array", "minItems": 1,
                    "items": {"type": "object", "required": ["id"], "properties": {"id": _FILE_ID,
                                                                                   "title": {"type": "string"}}},
                }},
            }},
            "default": {"schema": _OK_FALSE},
        },
    },
    # docs.slack.dev/reference/methods/apps.connections.open: an app-level token, connections:write.
    "apps.connections.open": {
        "parameters": [_TOKEN],
        "responses": {
            "200": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["ok", "url"],
                "properties": {"ok": {"enum": [True]}, "url": {"type": "string", "pattern": "^wss?://"}},
            }},
            "default": {"schema": _OK_FALSE},
        },
    },
}
