"""``/healthz`` and ``/metrics``: what an operator's probes and Prometheus see."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bot.clock import SystemClock
from bot.errors import ProviderRateLimited
from bot.generation import GeneratedImage, Health, ProgressCallback, ProviderCall
from bot.jobs import JobStatus
from providers.registry import build_providers
from providers.sketch import SketchProvider
from tests.adapters.web.conftest import Web, WebFactory


class TiredSketch(SketchProvider):
    """A sketch provider that always answers 429, as a busy remote API would."""

    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        raise ProviderRateLimited("slow down", provider=self.name, retry_after=0.0)

    async def health(self) -> Health:
        return Health(ok=False, detail="rate limited")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def _metrics(web: Web) -> tuple[str, dict[Any, float]]:
    response = await web.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    return text, _samples(text)


async def test_healthz_reports_storage_and_providers(web: Web) -> None:
    response = await web.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ok"
    assert body["storage"] == {"ok": True} and body["providers"]["sketch"]["ok"] is True


async def test_healthz_is_503_when_storage_is_down(web: Web) -> None:
    await web.app.storage.close()
    response = await web.get("/healthz")
    assert response.status == 503
    assert (await response.json())["storage"] == {"ok": False}


async def test_metrics_move_after_a_job(web: Web) -> None:
    text, before = await _metrics(web)
    for name in (
        "imaginebot_queue_depth", "imaginebot_jobs", "imaginebot_jobs_finished_total",
        "imaginebot_job_duration_seconds", "imaginebot_provider_errors_total", "imaginebot_platform_429_total",
        "imaginebot_progress_edits_sent_total", "imaginebot_progress_edits_skipped_total",
    ):
        assert re.search(rf"^# TYPE {name} ", text, re.M), name
    assert before[("imaginebot_queue_depth", (("provider", "sketch"),))] == 0
    job_id = await web.submit("a lighthouse --n 2")
    await web.finished(job_id)
    _, after = await _metrics(web)
    assert after[("imaginebot_jobs_finished_total", (("provider", "sketch"), ("state", "succeeded")))] == 1
    assert after[("imaginebot_job_duration_seconds_count", (("provider", "sketch"),))] == 1
    assert after[("imaginebot_job_duration_seconds_sum", (("provider", "sketch"),))] > 0.2
    sent = ("imaginebot_progress_edits_sent_total", (("surface", "web"),))
    assert after[sent] >= before[sent] + 2, "at least the queued and the final card"
    assert after[("imaginebot_jobs", (("state", "running"),))] == 0


async def test_queue_depth_and_running_jobs_are_read_at_scrape_time(make_web: WebFactory) -> None:
    web = await make_web(sketch={"delay": 5.0, "concurrency": 1})
    first = await web.submit("one --n 1")
    await web.submit("two --n 1")
    _, samples = await _metrics(web)
    assert samples[("imaginebot_queue_depth", (("provider", "sketch"),))] == 1
    assert samples[("imaginebot_jobs", (("state", "running"),))] == 1
    assert samples[("imaginebot_jobs", (("state", "queued"),))] == 1
    await web.act(first, "cancel")
    assert (await web.finished(first)).status is JobStatus.CANCELLED
    _, samples = await _metrics(web)
    assert samples[("imaginebot_jobs_finished_total", (("provider", "sketch"), ("state", "cancelled")))] == 1


async def test_provider_errors_are_counted_by_kind(make_web: WebFactory) -> None:
    sections = {
        "sketch": {"type": "sketch", "delay": 0.0, "size": 64},
        "tired": {"type": "sketch", "delay": 0.0, "size": 64},
    }
    providers = build_providers(sections, clock=SystemClock())
    providers["tired"] = TiredSketch("tired", providers["tired"].settings)
    web = await make_web(instances=providers, queue={"max_attempts": 1}, providers=sections)
    job_id = await web.submit("a cat --n 1 --provider tired")
    assert (await web.finished(job_id)).status is JobStatus.FAILED
    _, samples = await _metrics(web)
    assert samples[("imaginebot_provider_errors_total", (("kind", "rate_limited"), ("provider", "tired")))] == 1
    health = await web.get("/healthz")
    body = await health.json()
    assert health.status == 200 and body["providers"]["tired"] == {"ok": False, "detail": "rate limited"}


async def test_adapters_count_platform_429s(web: Web) -> None:
    web.metrics.platform_429("discord")
    web.metrics.platform_429("discord")
    _, samples = await _metrics(web)
    assert samples[("imaginebot_platform_429_total", (("platform", "discord"),))] == 2
