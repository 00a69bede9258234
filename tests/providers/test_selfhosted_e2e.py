"""The four GPU backends end to end: config, the service and engine, a recording surface, and the CLI.

The app is built from a config mapping whose providers point at the fake A1111, ComfyUI,
Replicate and AI Horde servers. Time is a FakeClock that a pump moves forward, so the polling
loops (A1111 progress, Replicate and Horde status) run at test speed; the CLI runs as a real
subprocess with the real clock.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import images as imaging
from bot.app import App, build_app
from bot.clock import FakeClock
from bot.config import config_from_dict, load_config
from bot.errors import ConfigError
from bot.jobs import JobStatus, Origin
from providers.registry import build_providers
from tests.fakes import replicate_api
from tests.fakes.a1111_api import FakeA1111
from tests.fakes.comfyui_api import FakeComfyUI
from tests.fakes.horde_api import API_KEY as HORDE_KEY
from tests.fakes.horde_api import FakeHorde
from tests.fakes.replicate_api import FakeReplicate
from tests.fakes.surface import RecordingSurface
from tests.providers.selfhosted_support import eventually, pumping

ROOT = Path(__file__).resolve().parents[2]
ALICE = Origin(platform="web", server_id="guild", channel_id="general", user_id="alice")
TYPES = ("a1111", "comfyui", "replicate", "horde")
WORKFLOW = str(ROOT / "examples" / "comfyui" / "txt2img.json")
BINDINGS = {"prompt": "6.text", "negative": "7.text", "seed": "3.seed", "width": "5.width", "height": "5.height",
            "steps": "3.steps", "cfg": "3.cfg", "batch": "5.batch_size"}


@dataclass
class Backends:
    a1111: FakeA1111
    comfyui: FakeComfyUI
    replicate: FakeReplicate
    horde: FakeHorde

    def all(self) -> tuple[FakeA1111, FakeComfyUI, FakeReplicate, FakeHorde]:
        return self.a1111, self.comfyui, self.replicate, self.horde

    def sections(self) -> dict[str, dict[str, Any]]:
        local = "http://127.0.0.1"
        return {
            "a1111": {"type": "a1111", "base_url": f"{local}:{self.a1111.port}/", "progress_seconds": 0.5},
            "comfyui": {"type": "comfyui", "base_url": f"{local}:{self.comfyui.port}", "workflow": WORKFLOW,
                        "bindings": BINDINGS},
            "replicate": {"type": "replicate", "api_key": replicate_api.TOKEN, "model": replicate_api.FLUX,
                          "base_url": f"{local}:{self.replicate.port}/v1", "poll_seconds": 1.0,
                          "prices": {"per_image": {"default": 0.003}}},
            "horde": {"type": "horde", "api_key": HORDE_KEY, "base_url": f"{local}:{self.horde.port}/api",
                      "poll_seconds": 1.0, "client_agent": "imaginebot:test:tests@example.org"},
            "sketch": {"type": "sketch", "delay": 0, "size": 64},
        }


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    started = Backends(FakeA1111(), FakeComfyUI(), FakeReplicate(), FakeHorde())
    for fake in started.all():
        await fake.start()
    yield started
    for fake in started.all():
        await fake.close()


@pytest.fixture
async def selfhosted(tmp_path: Path, backends: Backends) -> AsyncIterator[Any]:
    clock = FakeClock()
    built: list[App] = []

    async def make(routing: dict[str, Any] | None = None, **overrides: Any) -> tuple[App, RecordingSurface]:
        sections = backends.sections()
        for name, extra in overrides.items():
            sections[name] = {**sections[name], **extra}
        raw = {
            "storage": {"dir": str(tmp_path / "data")}, "providers": sections,
            "routing": routing or {"default": "a1111", "fallback": []},
            "queue": {"retry_base_seconds": 0.01, "retry_max_seconds": 0.1, "max_attempts": 1},
            "limits": {"daily_budget_usd_per_server": 0, "burst": 50, "per_user_per_minute": 6000},
        }
        app = await build_app(config_from_dict(raw, environ={}), clock=clock)
        surface = RecordingSurface()
        app.add_surface(surface)
        await app.start()
        built.append(app)
        return app, surface

    async with pumping(clock, step=0.1):
        yield make
        for app in built:
            await app.stop(grace_seconds=0)


def running(surface: RecordingSurface, job_id: str) -> list[Any]:
    return [c for c in surface.frames.get(job_id, []) if c.status is JobStatus.RUNNING]


@pytest.mark.parametrize("name", TYPES)
async def test_each_backend_serves_a_job_through_the_service(selfhosted: Any, backends: Backends, name: str) -> None:
    app, surface = await selfhosted()
    [job] = await app.service.submit(f"a red fox in the snow --n 2 --ar 3:2 --provider {name}", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED, final.error
    records = await app.storage.job_images(job.id)
    assert len(records) == 2 and {r.provider for r in records} == {name}
    assert all(r.width > r.height for r in records)
    for fake in backends.all():
        assert fake.violations == []


@pytest.mark.parametrize("name", ["a1111", "comfyui"])
async def test_live_previews_reach_the_card(selfhosted: Any, backends: Backends, name: str) -> None:
    backends.a1111.ticks_per_job = 3
    app, surface = await selfhosted()
    [job] = await app.service.submit(f"a harbour at dawn --n 1 --steps 6 --provider {name}", ALICE)
    assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
    previews = [c for c in running(surface, job.id) if c.preview]
    assert previews, "no preview reached the card"
    assert imaging.image_info(previews[-1].preview or b"").width <= 384
    assert any(c.step_text.startswith("step ") for c in running(surface, job.id))


async def test_the_horde_queue_position_and_eta_are_on_the_card(selfhosted: Any, backends: Backends) -> None:
    backends.horde.queue_checks = 3
    app, surface = await selfhosted()
    [job] = await app.service.submit("a castle --n 1 --provider horde", ALICE)
    assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
    places = [(c.position, c.eta_seconds) for c in running(surface, job.id) if c.position is not None]
    assert (2, 30.0) in places and all(eta is not None for _, eta in places)
    [record] = await app.storage.job_images(job.id)
    assert record.cost_usd == 0


def _backend_saw_cancel(backends: Backends, name: str) -> bool:
    if name == "a1111":
        return backends.a1111.interrupts == 1
    if name == "comfyui":
        return "/interrupt" in backends.comfyui.paths()
    if name == "replicate":
        return any(path.endswith("/cancel") for path in backends.replicate.paths())
    return backends.horde.paths("DELETE") != []


def _backend_busy(backends: Backends, name: str) -> bool:
    if name == "a1111":
        return backends.a1111.current is not None
    if name == "comfyui":
        return backends.comfyui.running is not None
    if name == "replicate":
        return any(r.method == "GET" for r in backends.replicate.received)
    return any("/check/" in path for path in backends.horde.paths("GET"))


@pytest.mark.parametrize("name", TYPES)
async def test_cancel_interrupts_the_backend(selfhosted: Any, backends: Backends, name: str) -> None:
    backends.a1111.hold = backends.comfyui.hold = backends.replicate.hold = backends.horde.hold = True
    app, surface = await selfhosted()
    [job] = await app.service.submit(f"a slow painting --n 1 --provider {name}", ALICE)
    await eventually(lambda: _backend_busy(backends, name))
    await app.service.cancel(job.id, ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.CANCELLED
    assert _backend_saw_cancel(backends, name), f"{name} was never told to stop"


async def test_a_server_that_goes_down_falls_back(selfhosted: Any, backends: Backends) -> None:
    await backends.a1111.close()
    app, surface = await selfhosted(routing={"default": "a1111", "fallback": ["comfyui"]})
    [job] = await app.service.submit("a lighthouse --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by == "comfyui"
    assert {r.provider for r in await app.storage.job_images(job.id)} == {"comfyui"}
    health = await app.providers["a1111"].health()
    assert not health.ok and "connection refused" in health.detail


async def test_a_second_server_behind_the_alias_takes_over_without_a_fallback(
    selfhosted: Any, backends: Backends
) -> None:
    dead = FakeA1111()
    await dead.start()
    await dead.close()
    urls = [f"http://127.0.0.1:{dead.port}", f"http://127.0.0.1:{backends.a1111.port}"]
    app, surface = await selfhosted(a1111={"base_url": urls})
    [job] = await app.service.submit("a lighthouse --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by is None


async def test_a_seeded_job_on_a_deterministic_backend_is_served_from_the_cache(
    selfhosted: Any, backends: Backends
) -> None:
    app, surface = await selfhosted()
    for _ in range(2):
        [job] = await app.service.submit("a cat --seed 42 --n 1 --provider a1111", ALICE)
        assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
    assert backends.a1111.paths().count("/sdapi/v1/txt2img") == 1


async def test_a_bad_workflow_fails_at_build_time_naming_file_node_and_binding(
    tmp_path: Path, backends: Backends
) -> None:
    sections = backends.sections()
    sections["comfyui"]["bindings"] = {**BINDINGS, "seed": "99.seed"}
    config = config_from_dict({"storage": {"dir": str(tmp_path / "data")}, "providers": sections}, environ={})
    with pytest.raises(ConfigError) as caught:
        build_providers(config.providers, clock=FakeClock())
    message = str(caught.value)
    assert message.startswith("providers.comfyui.bindings.seed:")
    assert "no node '99'" in message and WORKFLOW in message
    assert backends.comfyui.received == []  # found at start, not at a user's first prompt
    path = tmp_path / "config.toml"
    path.write_text(_toml(sections, tmp_path / "data"))
    code, stdout, stderr = await _cli("run", "--config", str(path), cwd=tmp_path)
    assert code == 2 and "Traceback" not in stderr
    assert "providers.comfyui.bindings.seed: there is no node '99'" in stderr


# --- the CLI ----------------------------------------------------------------------------------------
async def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def _toml(sections: dict[str, dict[str, Any]], data: Path) -> str:
    lines = [f'[storage]\ndir = "{data}"\n[web]\nenabled = false\n[routing]\ndefault = "sketch"\n']
    for name, section in sections.items():
        lines.append(f"[providers.{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in section.items())
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", TYPES)
async def test_imaginebot_generate_works_for_each_backend(tmp_path: Path, backends: Backends, name: str) -> None:
    backends.horde.queue_checks = 0
    sections = backends.sections()
    for fast in ("replicate", "horde"):
        sections[fast]["poll_seconds"] = 1.0
    config = tmp_path / "config.toml"
    config.write_text(_toml(sections, tmp_path / "data"))
    code, stdout, stderr = await _cli("generate", "a lighthouse at dusk --n 1", "--provider", name,
                                      "--config", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert code == 0, stderr
    [path] = [Path(line) for line in stdout.split()]
    params = imaging.read_parameters(path.read_bytes())
    assert params["provider"] == name and params["prompt"] == "a lighthouse at dusk"
    for secret in (replicate_api.TOKEN, HORDE_KEY):
        assert secret not in stderr and secret not in stdout


async def test_imaginebot_providers_shows_an_unreachable_server_as_down(tmp_path: Path, backends: Backends) -> None:
    await backends.a1111.close()
    config = tmp_path / "config.toml"
    config.write_text(_toml(backends.sections(), tmp_path / "data"))
    code, stdout, stderr = await _cli("providers", "--config", str(config), cwd=tmp_path)
    assert code == 0 and "Traceback" not in stdout + stderr
    lines = stdout.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("a1111 ")]
    assert re.search(r"\ba1111\s+.*\bdown\b", lines[row])
    reason = lines[row + 1].strip()
    assert "nothing answers at http://127.0.0.1" in reason and "is the WebUI running" in reason
    for other in ("comfyui", "replicate", "horde"):
        [line] = [line for line in lines if line.startswith(f"{other} ")]
        assert re.search(r"\bok\b", line), line


async def test_the_commented_examples_in_config_example_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting the self-hosted sections of config.example.toml gives providers that build."""
    monkeypatch.chdir(ROOT)  # the example workflow path is relative to where the bot starts
    text = (ROOT / "config.example.toml").read_text()
    assert load_config(ROOT / "config.example.toml", environ={}).providers.keys() == {"sketch"}
    setting = re.compile(r"^# ((\[providers\.\w+(\.prices)?\])|([a-z_0-9]+ = .+))$")
    lines, inside = [], False
    for line in text.splitlines():
        inside = (inside or line.startswith("# [providers.")) and line.strip() != ""
        match = setting.match(line) if inside else None
        lines.append(match.group(1) if match else line)
    uncommented = "\n".join(lines)
    raw = tomllib.loads(uncommented)
    found = {name: section for name, section in raw["providers"].items() if section.get("type") in TYPES}
    assert {section["type"] for section in found.values()} == set(TYPES)
    # "user:pass" fits A1111's api_auth, and does for the keys too.
    env = {name: "bot:set-in-the-environment" for name in re.findall(r"\$\{(\w+)\}", uncommented)}
    config = config_from_dict(raw, environ=env)
    built = build_providers({n: config.providers[n] for n in found}, clock=FakeClock())
    assert {p.type_name for p in built.values()} == set(TYPES)
    for provider in built.values():
        await provider.aclose()
