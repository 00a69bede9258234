"""The four cloud providers end to end: config, routing, fallback, refusals, previews, costs, the CLI.

The app is built from a config mapping (``build_app`` + ``config_from_dict``) whose providers
point at the fake servers; jobs go through the service and the engine, and a recording surface
shows what users would see.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import images as imaging
from bot.app import App, build_app
from bot.clock import FakeClock
from bot.config import config_from_dict, load_config
from bot.errors import InvalidRequest
from bot.jobs import JobStatus, Origin
from providers.registry import build_providers
from tests.fakes import gemini_api, openai_api, openrouter_api
from tests.fakes.gemini_api import FakeGemini
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.openrouter_api import FakeOpenRouter
from tests.fakes.surface import RecordingSurface

ROOT = Path(__file__).resolve().parents[2]
ALICE = Origin(platform="web", server_id="guild", channel_id="general", user_id="alice")
CLOUD = ("openai", "gemini", "xai", "openrouter")


@dataclass
class Fakes:
    openai: FakeOpenAI
    xai: FakeOpenAI
    gemini: FakeGemini
    openrouter: FakeOpenRouter

    def sections(self) -> dict[str, dict[str, Any]]:
        """A ``[providers]`` table pointing at the fakes, with prices."""
        return {
            "openai": {"type": "openai", "api_key": openai_api.API_KEY, "model": "gpt-image-1",
                       "base_url": f"http://127.0.0.1:{self.openai.port}/v1", "partial_images": 2,
                       "prices": {"per_image": {"default": 0.042, "low": 0.011},
                                  "input_text_per_million": 5.0, "output_image_per_million": 40.0}},
            "gemini": {"type": "gemini", "api_key": gemini_api.API_KEY, "model": "gemini-2.5-flash-image",
                       "base_url": f"http://127.0.0.1:{self.gemini.port}",
                       "prices": {"per_image": {"default": 0.039}, "output_image_per_million": 30.0}},
            "xai": {"type": "xai", "api_key": openai_api.API_KEY, "model": "grok-imagine-image",
                    "base_url": f"http://127.0.0.1:{self.xai.port}/v1", "usd_per_cost_tick": 1e-10,
                    "prices": {"per_image": {"default": 0.02}}},
            "openrouter": {"type": "openrouter", "api_key": openrouter_api.API_KEY,
                           "model": "google/gemini-2.5-flash-image",
                           "base_url": f"http://127.0.0.1:{self.openrouter.port}/api/v1",
                           "prices": {"per_image": {"default": 0.04}, "output_image_per_million": 30.0}},
            "sketch": {"type": "sketch", "delay": 0, "size": 64},
        }


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    started = Fakes(FakeOpenAI(), FakeOpenAI(flavour="xai"), FakeGemini(), FakeOpenRouter())
    for fake in (started.openai, started.xai, started.gemini, started.openrouter):
        await fake.start()
    yield started
    for fake in (started.openai, started.xai, started.gemini, started.openrouter):
        await fake.close()


@pytest.fixture
async def cloud(tmp_path: Path, fakes: Fakes) -> AsyncIterator[Any]:
    built: list[App] = []

    async def make(**overrides: Any) -> tuple[App, RecordingSurface]:
        sections = fakes.sections()
        for name, extra in overrides.pop("providers", {}).items():
            sections[name] = {**sections[name], **extra}
        raw = {
            "storage": {"dir": str(tmp_path / "data")},
            "providers": sections,
            "routing": {"default": "openai", "fallback": ["gemini"]},
            "queue": {"retry_base_seconds": 0.01, "retry_max_seconds": 0.1},
            "limits": {"daily_budget_usd_per_server": 0, "burst": 20, "per_user_per_minute": 600},
            **overrides,
        }
        app = await build_app(config_from_dict(raw, environ={}))
        surface = RecordingSurface()
        app.add_surface(surface)
        await app.start()
        built.append(app)
        return app, surface

    yield make
    for app in built:
        await app.stop(grace_seconds=0)
        for provider in app.providers.values():
            await provider.aclose()


@pytest.mark.parametrize("name", CLOUD)
async def test_each_provider_serves_a_job_with_costs_stored_and_summed(cloud: Any, name: str) -> None:
    app, surface = await cloud()
    [job] = await app.service.submit(f"a red fox in the snow --n 2 --ar 3:2 --provider {name}", ALICE)
    assert job.provider == name
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED, final.error
    records = await app.storage.job_images(job.id)
    assert len(records) == 2 and {r.provider for r in records} == {name}
    assert all(r.cost_usd > 0 for r in records) and all(r.width > r.height for r in records)
    day = datetime.fromtimestamp(app.clock.now(), UTC).strftime("%Y-%m-%d")
    server = await app.storage.usage("web", "guild", day)
    user = await app.storage.usage("web", "guild", day, user_id="alice")
    assert server.images == user.images == 2
    assert server.cost_usd == pytest.approx(sum(r.cost_usd for r in records)) == user.cost_usd


async def test_estimates_before_the_run_come_from_the_price_table(cloud: Any) -> None:
    app, surface = await cloud()
    [job] = await app.service.submit("a fox --n 3 --q low", ALICE)
    assert app.service.estimated_cost(job) == pytest.approx(3 * 0.011)
    await surface.wait_final(job.id)


async def test_partial_images_reach_the_job_card(cloud: Any, fakes: Fakes) -> None:
    fakes.openai.partial_delay = 0.05
    app, surface = await cloud()
    [job] = await app.service.submit("a harbour at dawn --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED
    previews = [c for c in surface.frames[job.id] if c.status is JobStatus.RUNNING and c.preview]
    assert len(previews) >= 2
    assert imaging.image_info(previews[0].preview or b"").width <= 384


async def test_an_unavailable_provider_falls_back_and_the_result_says_which(cloud: Any, fakes: Fakes) -> None:
    fakes.openai.always = openai_api.server_error(503)
    app, surface = await cloud()
    [job] = await app.service.submit("a lighthouse --n 2", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by == "gemini"
    assert {r.provider for r in await app.storage.job_images(job.id)} == {"gemini"}
    assert len(fakes.gemini.received) == 2  # Gemini makes one image per call
    [delivery] = surface.deliveries[job.id]
    assert delivery.served_by == "gemini"


async def test_images_already_paid_for_are_kept_when_a_later_call_fails(cloud: Any, fakes: Fakes) -> None:
    fakes.gemini.faults = [None, gemini_api.server_error(503)]
    app, surface = await cloud(routing={"default": "gemini", "fallback": ["openai"]})
    [job] = await app.service.submit("two foxes --n 2", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by is None
    assert len(await app.storage.job_images(job.id)) == 1
    assert len(fakes.gemini.received) == 2 and fakes.openai.received == []  # nothing bought twice


async def test_a_timeout_falls_back_too(cloud: Any, fakes: Fakes) -> None:
    fakes.openai.always = openai_api.hang(3.0)
    app, surface = await cloud(providers={"openai": {"timeout_seconds": 0.3}})
    [job] = await app.service.submit("a lighthouse --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by == "gemini"


async def test_a_refusal_is_shown_with_the_reason_and_never_rerouted(
    cloud: Any, fakes: Fakes, no_secrets_logged: list[str]
) -> None:
    fakes.openai.faults.append(openai_api.moderation())
    app, surface = await cloud()
    [job] = await app.service.submit("something violent --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.FAILED and final.error is not None
    assert "openai refused" in final.error and "rejected by the safety system" in final.error
    assert fakes.gemini.received == [] and len(fakes.openai.received) == 1
    no_secrets_logged.append(final.error)


async def test_quota_exhausted_tells_the_admin_and_a_rate_limit_is_retried(
    cloud: Any, fakes: Fakes, no_secrets_logged: list[str]
) -> None:
    fakes.openai.always = openai_api.quota()
    app, surface = await cloud(routing={"default": "openai", "fallback": []})
    [job] = await app.service.submit("a fox --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.FAILED and final.error is not None and "admin" in final.error
    assert len(fakes.openai.received) == 1  # quota is never retried
    fakes.openai.always = None
    fakes.openai.faults.append(openai_api.rate_limited(retry_after=0.05))
    [job] = await app.service.submit("a fox --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and len(fakes.openai.received) == 3
    no_secrets_logged.append(final.error or "")


async def test_a_negative_prompt_is_folded_and_the_user_told(cloud: Any, fakes: Fakes) -> None:
    app, surface = await cloud()
    [job] = await app.service.submit("a beach --no people, umbrellas --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED
    assert fakes.openai.received[-1].json["prompt"] == "a beach. Avoid: people, umbrellas"
    notes = [c.step_text for c in surface.frames[job.id] if c.status is JobStatus.RUNNING]
    assert any("takes no negative prompt" in text for text in notes)


async def test_a_negative_prompt_is_refused_at_submit_when_configured(cloud: Any, fakes: Fakes) -> None:
    app, _ = await cloud(providers={"xai": {"negative_prompt": "refuse"}})
    with pytest.raises(InvalidRequest, match="xai can't do negative prompts"):
        await app.service.submit("a beach --no people --provider xai", ALICE)
    assert fakes.xai.received == []


async def test_the_result_cache_serves_deterministic_providers_only(cloud: Any, fakes: Fakes) -> None:
    app, surface = await cloud()
    jobs = []
    for _ in range(2):
        [job] = await app.service.submit("a cat --seed 42 --n 1 --provider sketch", ALICE)
        assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
        jobs.append(job)
    first, second = jobs
    [a], [b] = await app.storage.job_images(first.id), await app.storage.job_images(second.id)
    assert a.sha256 == b.sha256 and b.job_id == second.id
    for _ in range(2):
        [job] = await app.service.submit("a cat --seed 42 --n 1 --provider openai", ALICE)
        await surface.wait_final(job.id)
    assert len(fakes.openai.received) == 2  # OpenAI draws anew for a seed: never cached


# --- the CLI ----------------------------------------------------------------------------------------
async def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    # The fakes run on this test's event loop, so the CLI must run as a child we await, not block on.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _toml(sections: dict[str, dict[str, Any]], data: Path) -> str:
    lines = [f'[storage]\ndir = "{data}"\n[web]\nenabled = false\n[routing]\ndefault = "sketch"\n']
    for name, section in sections.items():
        lines.append(f"[providers.{name}]")
        for key, value in section.items():
            if key == "prices":
                prices = ", ".join(f"{k} = {v}" for k, v in value.items() if not isinstance(v, dict))
                per_image = ", ".join(f"{k} = {v}" for k, v in value["per_image"].items())
                lines.append(f"prices = {{ {prices}{', ' if prices else ''}per_image = {{ {per_image} }} }}")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            else:
                lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", CLOUD)
async def test_imaginebot_generate_works_for_each_provider(tmp_path: Path, fakes: Fakes, name: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(_toml(fakes.sections(), tmp_path / "data"))
    out = tmp_path / "out"
    code, stdout, stderr = await _cli("generate", "a lighthouse at dusk --n 1", "--provider", name,
                                      "--config", str(config), "--out", str(out), cwd=tmp_path)
    assert code == 0, stderr
    [path] = [Path(line) for line in stdout.split()]
    params = imaging.read_parameters(path.read_bytes())
    assert params["provider"] == name and params["prompt"] == "a lighthouse at dusk"
    assert "Estimated cost: $" in stderr
    for secret in (openai_api.API_KEY, gemini_api.API_KEY, openrouter_api.API_KEY):
        assert secret not in stderr and secret not in stdout



async def test_the_commented_provider_examples_in_config_example_are_valid() -> None:
    """Uncommenting a cloud section of config.example.toml gives a config that loads and builds."""
    text = (ROOT / "config.example.toml").read_text()
    assert load_config(ROOT / "config.example.toml", environ={}).providers.keys() == {"sketch"}  # needs no key
    setting = re.compile(r"^# ((\[providers\.\w+(\.prices)?\])|([a-z_]+ = .+))$")
    lines, inside = [], False
    for line in text.splitlines():
        inside = (inside or line.startswith("# [providers.")) and line.strip() != ""
        match = setting.match(line) if inside else None
        lines.append(match.group(1) if match else line)
    uncommented = "\n".join(lines)
    raw = tomllib.loads(uncommented)
    assert set(CLOUD) <= set(raw["providers"])
    env = {name: "set-in-the-environment" for name in re.findall(r"\$\{(\w+)\}", uncommented)}
    config = config_from_dict(raw, environ=env)
    built = build_providers({n: config.providers[n] for n in CLOUD}, clock=FakeClock())
    assert [built[n].type_name for n in CLOUD] == list(CLOUD)
    for provider in built.values():
        await provider.aclose()
