"""Just enough of Discord's and Slack's HTTP APIs for ``imaginebot doctor``: who am I, where am I, scopes.

The fuller fakes (tests/fakes/discord, tests/fakes/slack) drive the adapters; these answer the
three or four calls the doctor makes, with the failure modes the doctor must explain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

GOOD_DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
GOOD_SLACK_TOKEN = "xoxb-1111-2222-abcdefabcdefabcdef"


@dataclass
class Peers:
    """Discord under /api/v10 and Slack under /api/ on one local server."""

    guild_permissions: list[int] = field(default_factory=lambda: [(1 << 39) - 1])
    slack_scopes: list[str] = field(
        default_factory=lambda: ["commands", "chat:write", "files:write", "reactions:read", "channels:history",
                                 "groups:history", "users:read", "im:write"]
    )
    server: TestServer | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_get("/api/v10/users/@me/guilds", self._guilds)
        app.router.add_post("/api/auth.test", self._auth_test)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @staticmethod
    def _discord_ok(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {GOOD_DISCORD_TOKEN}"

    async def _me(self, request: web.Request) -> web.Response:
        if not self._discord_ok(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response({"id": "42", "username": "imaginebot", "bot": True})

    async def _application(self, request: web.Request) -> web.Response:
        return web.json_response({"id": "4242", "name": "imaginebot", "flags": 0})

    async def _guilds(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{"id": str(i), "name": f"guild {i}", "permissions": str(p)} for i, p in enumerate(self.guild_permissions)]
        )

    async def _auth_test(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {GOOD_SLACK_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "team": "Acme", "user_id": "U1"},
                                 headers={"x-oauth-scopes": ",".join(self.slack_scopes)})
