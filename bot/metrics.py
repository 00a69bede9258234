"""Prometheus metrics: queue depth, jobs by state, durations, provider errors, 429s and progress edits.

A :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the global
one), so several apps in one process (tests) never share counters. Event counters are fed by the
engine's and runner's hooks; gauges that describe "now" (queue depth, jobs by state, progress
edits) are read from the live objects at scrape time, so they can never drift from the truth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bot.errors import ProviderError
from bot.jobs import Job, JobStatus

if TYPE_CHECKING:
    from bot.app import App
    from bot.engine import Engine
    from bot.progress import ProgressReporter


#: What ``/metrics`` answers with (the Prometheus text exposition format).
CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a second to ten minutes: sketch jobs take a second, remote providers up to a few minutes.
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def error_kind(exc: ProviderError) -> str:
    """``ProviderRateLimited`` -> ``rate_limited``: a stable, low-cardinality label."""
    name = type(exc).__name__
    name = name.removeprefix("Provider") or "error"
    return _CAMEL.sub("_", name).lower()


class Metrics:
    """The bot's metrics in a private registry; :meth:`render` gives the Prometheus text."""

    def __init__(self, *, engine: Engine, reporter: ProgressReporter, providers: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._engine = engine
        self._reporter = reporter
        self.jobs_finished = Counter(
            "imaginebot_jobs_finished", "Jobs that reached a final state.",
            ["provider", "state"], registry=self.registry,
        )
        self.job_duration = Histogram(
            "imaginebot_job_duration_seconds", "Time from start to finish of succeeded jobs.",
            ["provider"], buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.job_wait = Histogram(
            "imaginebot_job_wait_seconds", "Time jobs waited in the queue before they started.",
            ["provider"], buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.provider_errors = Counter(
            "imaginebot_provider_errors", "Failed provider calls, by kind of error.",
            ["provider", "kind"], registry=self.registry,
        )
        self.platform_429s = Counter(
            "imaginebot_platform_429", "429 (rate limited) answers from chat platforms.",
            ["platform"], registry=self.registry,
        )
        self.registry.register(_LiveCollector(engine, reporter, sorted(providers)))

    @classmethod
    def attach(cls, app: App) -> Metrics:
        """Metrics for ``app``, subscribed to its engine's and runner's hooks."""
        metrics = cls(engine=app.engine, reporter=app.reporter, providers=app.providers)
        app.engine.on_started.append(metrics.job_started)
        app.engine.on_finished.append(metrics.job_finished)
        app.runner.on_provider_error.append(metrics.provider_error)
        return metrics

    # --- hooks ----------------------------------------------------------------------------------
    def job_started(self, job: Job) -> None:
        # Only a job's first start counts as waiting in line; a retry's backoff is not queue time.
        if job.attempts == 0 and job.started_at is not None and job.created_at:
            self.job_wait.labels(job.provider).observe(max(0.0, job.started_at - job.created_at))

    def job_finished(self, job: Job) -> None:
        self.jobs_finished.labels(job.provider, job.status.value).inc()
        if job.status is JobStatus.SUCCEEDED and job.started_at is not None and job.finished_at is not None:
            self.job_duration.labels(job.provider).observe(max(0.0, job.finished_at - job.started_at))

    def provider_error(self, provider: str, exc: ProviderError) -> None:
        self.provider_errors.labels(provider, error_kind(exc)).inc()

    def platform_429(self, platform: str) -> None:
        """Adapters call this when their platform answers 429."""
        self.platform_429s.labels(platform).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Values read at scrape time from the engine's queue and the reporter's throttles."""

    def __init__(self, engine: Engine, reporter: ProgressReporter, providers: list[str]) -> None:
        self._engine = engine
        self._reporter = reporter
        self._providers = providers

    def collect(self) -> Iterator[Metric]:
        queue = self._engine.queue
        depth = GaugeMetricFamily("imaginebot_queue_depth", "Jobs waiting to start.", labels=["provider"])
        running = 0
        waiting = 0
        for name in self._providers:
            depth.add_metric([name], queue.waiting_in(name))
            waiting += queue.waiting_in(name)
            running += queue.running_in(name)
        yield depth
        # Accepted but unfinished jobs that are neither waiting nor running wait out a retry backoff.
        retrying = max(0, self._engine.pending.total_jobs - waiting - running)
        states = GaugeMetricFamily("imaginebot_jobs", "Unfinished jobs by state.", labels=["state"])
        for state, value in (("queued", waiting), ("running", running), ("retry_wait", retrying)):
            states.add_metric([state], value)
        yield states
        yield from self._edits()

    def _edits(self) -> Iterator[Metric]:
        families = {
            "sent": CounterMetricFamily(
                "imaginebot_progress_edits_sent", "Card edits sent to a surface.", labels=["surface"]
            ),
            "skipped": CounterMetricFamily(
                "imaginebot_progress_edits_skipped",
                "Card edits coalesced away by the throttle (a newer state replaced them).",
                labels=["surface"],
            ),
            "failed": CounterMetricFamily(
                "imaginebot_progress_edits_failed", "Card edits that raised.", labels=["surface"]
            ),
        }
        for surface, throttle in sorted(self._reporter.throttles.items()):
            stats = throttle.stats
            families["sent"].add_metric([surface], stats.sent)
            families["skipped"].add_metric([surface], stats.skipped)
            families["failed"].add_metric([surface], stats.failed)
        yield from families.values()


