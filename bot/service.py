"""The service API every surface uses: submit, actions on jobs, history, galleries, settings.

Ownership and admin rules live here, not in adapters. Every method either does what was asked
or raises a :class:`~bot.errors.UserFacingError` whose message can be shown as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import images as imaging
from bot import messages
from bot.clock import Clock
from bot.config import Config, StyleConfig, TemplateConfig
from bot.delivery import build_delivery
from bot.engine import Engine
from bot.errors import InvalidRequest, NotAllowed, NotFound, QueueFull
from bot.generation import Provider, ProviderCall
from bot.jobs import GalleryItem, ImageRecord, Job, JobStatus, Origin, Page, new_job_id
from bot.limits import Admission, Pending, effective_limits
from bot.moderation import AuditEntry, nsfw_setting_problem
from bot.prompt import parse_prompt
from bot.request import GenerationRequest, JobKind
from bot.runner import can_serve
from bot.screening import Screening
from bot.settings import (
    MODERATION_KEYS,
    SCOPES,
    ScopeSettings,
    merged_defaults,
    parse_settings,
    preferred_provider,
    server_limits,
)
from bot.styles import describe_styles, merge_styles
from bot.surface import Delivery, Surface
from storage.base import BlobStore, Storage

DEFAULT_VARIATION_STRENGTH = 0.35
#: Entries kept in each settings cache; past this they are dropped and re-read (a cheap bound for
#: servers with very many members).
CACHE_LIMIT = 20_000
SHUTTING_DOWN = "The bot is restarting; try again in a minute."


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One of a user's unfinished jobs with its place in line."""

    job: Job
    position: int | None
    eta_seconds: float | None


class ImagineService:
    """What surfaces call. Holds no platform knowledge."""

    def __init__(
        self,
        *,
        config: Config,
        storage: Storage,
        blobs: BlobStore,
        providers: Mapping[str, Provider],
        engine: Engine,
        admission: Admission,
        clock: Clock,
    ) -> None:
        self.config = config
        self.storage = storage
        self.blobs = blobs
        self.providers = providers
        self.engine = engine
        self._admission = admission
        self._clock = clock
        # Write-through caches: this service is the only writer of settings and saved names.
        self._settings_cache: dict[tuple[str, str, str], ScopeSettings] = {}
        self._named_cache: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self._screening = Screening(storage=storage, clock=clock)

    # --- submitting ---------------------------------------------------------------------------
    async def submit(
        self,
        text: str,
        origin: Origin,
        *,
        attachment: bytes | None = None,
        refs: Mapping[str, str] | None = None,
    ) -> list[Job]:
        """Parse ``/imagine`` text (flags, styles, templates, permutations), moderate it and queue its jobs."""
        layers = await self._settings_layers(origin)
        self._check_channel(origin, layers[0])
        styles = await self.styles_for(origin)
        requests = parse_prompt(
            text,
            defaults=merged_defaults(self.config.defaults, layers),
            styles=styles,
            templates=await self.templates_for(origin),
            providers=list(self.providers),
            max_permutations=self.config.queue.max_permutations,
        )
        screened = await self._screening.screen(requests, origin, layers, styles)
        requests = screened.requests
        if attachment is not None:
            sha = await self.store_user_image(attachment)
            requests = [r.model_copy(update={"init_image": sha}) for r in requests]
        jobs = await self._queue(requests, origin, preferred_provider(layers), refs)
        await self._screening.note_queued(jobs, screened)
        return jobs

    async def submit_request(
        self, request: GenerationRequest, origin: Origin, *, refs: Mapping[str, str] | None = None
    ) -> Job:
        """Queue an already-built request (run again, rerolls, variations, upscales), moderated afresh."""
        layers = await self._settings_layers(origin)
        self._check_channel(origin, layers[0])
        screened = await self._screening.screen([request], origin, layers, await self.styles_for(origin))
        jobs = await self._queue(screened.requests, origin, preferred_provider(layers), refs)
        await self._screening.note_queued(jobs, screened)
        return jobs[0]

    @staticmethod
    def _check_channel(origin: Origin, server: ScopeSettings) -> None:
        allowed = server.allowed_channels
        if allowed and origin.channel_id not in allowed and not origin.is_admin:
            raise NotAllowed(messages.channel_not_allowed(allowed))

    async def store_user_image(self, data: bytes) -> str:
        """Validate a user-supplied image (size, format, bombs) and store it; returns its sha256."""
        await asyncio.to_thread(imaging.validate_user_image, data)
        png = await asyncio.to_thread(imaging.to_png, data)
        return await self.blobs.put(png)

    async def _queue(
        self,
        requests: list[GenerationRequest],
        origin: Origin,
        preferred: str | None,
        refs: Mapping[str, str] | None,
    ) -> list[Job]:
        if not self.engine.accepting:
            raise QueueFull(SHUTTING_DOWN)
        now = self._clock.now()
        batch = new_job_id(now) if len(requests) > 1 else None
        jobs: list[Job] = []
        costs: dict[str, float] = {}
        for request in requests:
            provider_name = self._route(request, preferred)
            job = Job(
                id=new_job_id(now), origin=origin, request=request, provider=provider_name,
                created_at=now, message_refs=dict(refs or {}), batch_id=batch,
            )
            costs[job.id] = self._estimate(self.providers[provider_name], request)
            jobs.append(job)
        server = await self.get_settings(origin, "server")
        limits_config = server_limits(self.config.limits, server)
        limits = effective_limits(limits_config, origin)
        await self._admission.admit(
            origin,
            config=limits_config,
            jobs=len(jobs),
            images=sum(1 if r.kind is JobKind.UPSCALE else r.count for r in requests),
            cost_usd=sum(costs.values()),
            pending=self._pending(origin),
        )
        if server.moderation == "provider":
            await self._screening.ask_providers(jobs, self.providers, await self.styles_for(origin))
        await self.engine.enqueue(jobs, max_running=limits.max_running_per_user, costs=costs)
        return jobs

    def _route(self, request: GenerationRequest, preferred: str | None) -> str:
        name = request.provider or preferred or self.config.routing.default
        if name not in self.providers:
            name = self.config.routing.default
        provider = self.providers[name]
        if not can_serve(provider, request):
            raise InvalidRequest(messages.capability_missing(name, _needs(request, provider)))
        return name

    def estimated_cost(self, job: Job) -> float:
        """What a queued job is expected to cost in USD: the figure budgets use, for showing to the user."""
        return self._estimate(self.providers[job.provider], job.request)

    @staticmethod
    def _estimate(provider: Provider, request: GenerationRequest) -> float:
        width, height = provider.size_for(request.aspect_ratio)
        call = ProviderCall(request=request, count=request.count, seed=0, width=width, height=height)
        return provider.estimate_cost(call)

    def _pending(self, origin: Origin) -> Pending:
        user_jobs, user_images = self.engine.pending.user(origin.platform, origin.user_id)
        server_images, server_cost = self.engine.pending.server(origin.platform, origin.server_id)
        return Pending(
            images_user=user_images, images_server=server_images, cost_server=server_cost,
            queued_user=user_jobs, queued_total=self.engine.pending.total_jobs,
        )

    # --- actions on a job ----------------------------------------------------------------------
    async def job(self, job_id: str, origin: Origin) -> Job:
        """A job visible from ``origin`` (same platform and server); NotFound otherwise."""
        job = self.engine.live_job(job_id) or await self.storage.get_job(job_id)
        if (
            job is None
            or job.deleted
            or job.origin.platform != origin.platform
            or job.origin.server_id != origin.server_id
        ):
            raise NotFound(messages.JOB_NOT_FOUND)
        return job

    async def reroll(self, job_id: str, origin: Origin, *, refs: Mapping[str, str] | None = None) -> Job:
        """The same request again with a fresh seed, as a new job of whoever asked."""
        source = await self.job(job_id, origin)
        request = source.request.model_copy(update={"seed": None})
        return await self.submit_request(request, origin, refs=refs)

    async def vary(
        self,
        job_id: str,
        index: int,
        origin: Origin,
        *,
        strength: float | None = None,
        refs: Mapping[str, str] | None = None,
    ) -> Job:
        """Variations of image ``index`` (0-based) of a finished job."""
        source = await self._finished_image(job_id, index, origin)
        request = source.request.model_copy(update={
            "kind": JobKind.VARIATION, "source_job_id": source.id, "source_image_index": index,
            "strength": DEFAULT_VARIATION_STRENGTH if strength is None else strength,
            "seed": None, "provider": source.provider,
        })
        return await self.submit_request(GenerationRequest.model_validate(request.model_dump()), origin, refs=refs)

    async def upscale(
        self, job_id: str, index: int, origin: Origin, *, refs: Mapping[str, str] | None = None
    ) -> Job:
        """A larger version of image ``index`` (0-based) of a finished job."""
        source = await self._finished_image(job_id, index, origin)
        request = source.request.model_copy(update={
            "kind": JobKind.UPSCALE, "source_job_id": source.id, "source_image_index": index,
            "count": 1, "provider": source.provider,
        })
        return await self.submit_request(GenerationRequest.model_validate(request.model_dump()), origin, refs=refs)

    async def _finished_image(self, job_id: str, index: int, origin: Origin) -> Job:
        source = await self.job(job_id, origin)
        if source.status is not JobStatus.SUCCEEDED:
            raise InvalidRequest(messages.JOB_NOT_FINISHED)
        if index not in {r.index for r in await self.storage.job_images(source.id)}:
            raise NotFound(messages.IMAGE_NOT_FOUND)
        return source

    async def follow_up(
        self, action: str, job_id: str, image: int | None, origin: Origin, *, refs: Mapping[str, str] | None = None
    ) -> Job:
        """The new job a button or reaction on a result asks for: "u" upscales image ``image``
        (1-based), "v" varies it, anything else rerolls the whole job."""
        if action == "u":
            return await self.upscale(job_id, (image or 1) - 1, origin, refs=refs)
        if action == "v":
            return await self.vary(job_id, (image or 1) - 1, origin, refs=refs)
        return await self.reroll(job_id, origin, refs=refs)

    async def cancel(self, job_id: str, origin: Origin) -> Job:
        job = await self.job(job_id, origin)
        self._check_owner(job, origin)
        if job.status.finished or not await self.engine.cancel(job):
            raise InvalidRequest(messages.ALREADY_FINISHED)
        return job

    async def delete(self, job_id: str, origin: Origin) -> Job:
        """Hide a job from history and galleries (cancelling it first if it has not finished)."""
        job = await self.job(job_id, origin)
        self._check_owner(job, origin)
        if not job.status.finished:
            await self.engine.cancel(job)
        await self.storage.mark_deleted(job.id)
        job.deleted = True
        return job

    async def favourite_job(self, job_id: str, origin: Origin) -> None:
        """Favourite every image of a finished job (the ⭐ reaction and the favourite button)."""
        source = await self.job(job_id, origin)
        if source.status is not JobStatus.SUCCEEDED:
            raise InvalidRequest(messages.JOB_NOT_FINISHED)
        images = await self.storage.job_images(source.id)
        if not images:
            raise NotFound(messages.IMAGE_NOT_FOUND)
        for image in images:
            await self.storage.set_favourite(origin.platform, origin.user_id, source.id, image.index, True)

    async def favourite(self, job_id: str, index: int, origin: Origin, *, on: bool = True) -> None:
        source = await self._finished_image(job_id, index, origin)
        await self.storage.set_favourite(origin.platform, origin.user_id, source.id, index, on)

    @staticmethod
    def _check_owner(job: Job, origin: Origin) -> None:
        owner = job.origin.platform == origin.platform and job.origin.user_id == origin.user_id
        if not (owner or origin.is_admin):
            raise NotAllowed(messages.NOT_YOUR_JOB)

    # --- browsing -----------------------------------------------------------------------------
    async def history(self, platform: str, channel_id: str, *, cursor: str | None = None,
                      limit: int = 20) -> Page[Job]:
        return await self.storage.channel_history(platform, channel_id, cursor=cursor, limit=limit)

    async def gallery(self, platform: str, channel_id: str, **filters: Any) -> Page[GalleryItem]:
        return await self.storage.channel_gallery(platform, channel_id, **filters)

    async def channels(self, platform: str) -> list[str]:
        """Channel ids of a platform that have jobs, most recently active first."""
        return [channel for _, channel in await self.storage.channels(platform)]

    async def job_images(self, job_id: str, origin: Origin) -> list[ImageRecord]:
        """A visible job's images, in order (none until it has succeeded)."""
        job = await self.job(job_id, origin)
        if job.status is not JobStatus.SUCCEEDED:
            return []
        return await self.storage.job_images(job.id)

    async def delivery_for(self, job_id: str, origin: Origin, surface: Surface) -> Delivery:
        """A finished job's stored images (and grid) fitted to ``surface``, e.g. to show it again."""
        job = await self.job(job_id, origin)
        return await build_delivery(job, await self.job_images(job.id, origin), self.blobs, surface)

    async def image_bytes(self, sha256: str) -> bytes:
        """A stored image by its hash (as galleries list them)."""
        return await self.blobs.get(sha256)

    async def my_queue(self, origin: Origin) -> list[QueueEntry]:
        """The user's waiting and running jobs, with positions and ETAs."""
        stored = await self.storage.user_jobs(
            origin.platform, origin.user_id, [JobStatus.QUEUED, JobStatus.RUNNING]
        )
        entries = []
        for job in stored:
            live = self.engine.live_job(job.id) or job
            position, eta = self.engine.place(live)
            entries.append(QueueEntry(live, position, eta))
        return entries

    async def styles(self, origin: Origin) -> list[tuple[str, str]]:
        return describe_styles(await self.styles_for(origin))

    async def styles_for(self, origin: Origin) -> dict[str, StyleConfig]:
        """Config styles, overlaid by the server's saved styles, then the user's."""
        server, user = await self._saved(origin, "style")
        return merge_styles(
            self.config.styles,
            {n: StyleConfig.model_validate(b) for n, b in server.items()},
            {n: StyleConfig.model_validate(b) for n, b in user.items()},
        )

    async def templates_for(self, origin: Origin) -> dict[str, TemplateConfig]:
        """Config templates, overlaid by the server's saved templates, then the user's."""
        merged = dict(self.config.templates)
        for layer in await self._saved(origin, "template"):
            merged.update({n: TemplateConfig.model_validate(b) for n, b in layer.items()})
        return merged

    async def save_template(self, origin: Origin, name: str, text: str, *, scope: str = "user") -> None:
        """Save a prompt with flags under a name, for the user or (admins) the server."""
        await self._save_named(origin, "template", name, TemplateConfig(text=text).model_dump(), scope)

    async def save_style(self, origin: Origin, name: str, style: StyleConfig, *, scope: str = "user") -> None:
        """Save a style preset under a name, for the user or (admins) the server."""
        await self._save_named(origin, "style", name, style.model_dump(exclude_none=True), scope)

    async def _save_named(self, origin: Origin, kind: str, name: str, body: dict[str, Any], scope: str) -> None:
        if scope not in ("user", "server"):
            raise InvalidRequest(f"A {kind} is saved for a user or a server.")
        if scope == "server" and not origin.is_admin:
            raise NotAllowed(messages.ADMIN_ONLY)
        if not name.isidentifier() or len(name) > 32:
            raise InvalidRequest(f"A {kind} name is one word of letters, digits and _ (at most 32).")
        scope_id = origin.user_id if scope == "user" else origin.server_id
        await self.storage.save_template(origin.platform, scope, scope_id, name, {"kind": kind, **body})
        self._named_cache.clear()

    async def _saved(self, origin: Origin, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(server, user) saved entries of one kind; cached, since only this service writes them."""
        layers = []
        for scope, scope_id in (("server", origin.server_id), ("user", origin.user_id)):
            key = (origin.platform, scope, scope_id)
            if key not in self._named_cache:
                if len(self._named_cache) >= CACHE_LIMIT:
                    self._named_cache.clear()
                self._named_cache[key] = await self.storage.templates(*key)
            entries = self._named_cache[key]
            layers.append({
                n: {k: v for k, v in b.items() if k != "kind"}
                for n, b in entries.items() if b.get("kind", "template") == kind
            })
        return layers[0], layers[1]

    # --- settings -----------------------------------------------------------------------------
    async def get_settings(self, origin: Origin, scope: str = "user") -> ScopeSettings:
        platform, scope_id = self._scope_address(origin, scope)
        key = (scope, platform, scope_id)
        cached = self._settings_cache.get(key)
        if cached is None:
            raw = await self.storage.get_settings(scope, platform, scope_id)
            if len(self._settings_cache) >= CACHE_LIMIT:
                self._settings_cache.clear()
            cached = self._settings_cache[key] = ScopeSettings.model_validate(raw)
        return cached

    async def set_settings(self, origin: Origin, values: Mapping[str, Any], scope: str = "user") -> ScopeSettings:
        """Change saved defaults; channel and server scopes are for admins."""
        if scope != "user" and not origin.is_admin:
            raise NotAllowed(messages.ADMIN_ONLY)
        platform, scope_id = self._scope_address(origin, scope)
        before = (await self.get_settings(origin, scope)).model_dump()
        settings = parse_settings({**before, **values}, providers=list(self.providers), scope=scope)
        problem = nsfw_setting_problem(platform, settings.nsfw) if "nsfw" in values else None
        if problem is not None:
            raise InvalidRequest(problem)
        await self.storage.set_settings(scope, platform, scope_id, settings.model_dump(exclude_none=True))
        self._settings_cache.pop((scope, platform, scope_id), None)
        after = settings.model_dump()
        changed = {k: after[k] for k in MODERATION_KEYS if after[k] != before[k]}
        await self._screening.note_settings(origin, scope, changed)
        return settings

    # --- moderation audit ---------------------------------------------------------------------
    async def audit_log(
        self, origin: Origin, *, cursor: str | None = None, limit: int = 10, user_id: str | None = None
    ) -> Page[AuditEntry]:
        """The server's moderation audit log, newest first: for its admins only."""
        if not origin.is_admin:
            raise NotAllowed(messages.AUDIT_ADMIN_ONLY)
        return await self.storage.audit_log(
            origin.platform, origin.server_id, cursor=cursor, limit=limit, user_id=user_id
        )

    @staticmethod
    def _scope_address(origin: Origin, scope: str) -> tuple[str, str]:
        if scope not in SCOPES:
            raise InvalidRequest(f"Settings scopes are {', '.join(SCOPES)}.")
        ids = {"user": origin.user_id, "channel": origin.channel_id, "server": origin.server_id}
        return origin.platform, ids[scope]

    async def _settings_layers(self, origin: Origin) -> list[ScopeSettings]:
        return [await self.get_settings(origin, scope) for scope in ("server", "channel", "user")]


def _needs(request: GenerationRequest, provider: Provider) -> str:
    caps = provider.capabilities
    if request.negative_prompt and not (caps.negative_prompt or caps.fold_negative_prompt):
        return "negative prompts"
    if request.kind is JobKind.VARIATION:
        return "variations"
    if request.kind is JobKind.UPSCALE:
        return "upscaling"
    if request.init_image is not None:
        return "image-to-image"
    return f"the aspect ratio {request.aspect_ratio}"
