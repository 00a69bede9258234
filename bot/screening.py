"""Screening requests at submit: the server's moderator, the provider's check, and the audit log.

The service hands every request here before it is queued. :meth:`Screening.screen` applies the
server's rules (:class:`~bot.moderation.Moderator`, built once per settings version) and either
refuses with a :class:`~bot.errors.ContentRejected` that names the rule and suggests a rewrite,
or returns the requests with their moderation fields set (``nsfw_allowed``, ``flagged``). A
refusal stores nothing but its audit row. Overrides and flagged outputs are audited with their
job ids once the jobs exist (:meth:`Screening.note_queued`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot import messages
from bot.clock import Clock
from bot.config import StyleConfig
from bot.errors import ContentRejected, ProviderError
from bot.generation import Provider, SupportsModeration
from bot.jobs import Job, Origin
from bot.moderation import (
    MARKED_NSFW_PLATFORMS,
    AuditAction,
    AuditEntry,
    Hit,
    Moderator,
    Rule,
    Verdict,
    excerpt,
)
from bot.request import GenerationRequest
from bot.settings import ScopeSettings, nsfw_policy
from bot.styles import effective_prompt
from storage.base import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Screened:
    """Requests cleared to queue, each with the verdict that cleared it (same order)."""

    requests: list[GenerationRequest]
    verdicts: list[Verdict]


class Screening:
    """Moderation at submit time, with the audit trail."""

    def __init__(self, *, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock
        #: (platform, server) -> (the settings it was built from, the moderator).
        self._moderators: dict[tuple[str, str], tuple[ScopeSettings, Moderator]] = {}

    def moderator(self, origin: Origin, server: ScopeSettings) -> Moderator:
        """The server's moderator, rebuilt only when its settings changed."""
        key = (origin.platform, origin.server_id)
        cached = self._moderators.get(key)
        if cached is None or cached[0] is not server:
            moderator = Moderator(
                blocked_words=server.blocked_words or (), blocked_patterns=server.blocked_patterns or (),
                allowed_words=server.allowed_words or (), nsfw_words=server.nsfw_words or (),
            )
            cached = self._moderators[key] = (server, moderator)
        return cached[1]

    async def screen(
        self,
        requests: Sequence[GenerationRequest],
        origin: Origin,
        layers: list[ScopeSettings],
        styles: Mapping[str, StyleConfig],
    ) -> Screened:
        """Judge every request (server layer first in ``layers``); refuse the lot if one is refused."""
        moderator = self.moderator(origin, layers[0])
        policy = nsfw_policy(layers)
        cleared, verdicts = [], []
        for request in requests:
            prompt = effective_prompt(request, styles).prompt if request.style else None
            verdict = moderator.check(request, origin, policy, prompt=prompt)
            if verdict.blocked is not None:
                await self._record(origin, AuditAction.REFUSED, verdict.blocked, request.prompt)
                raise ContentRejected(
                    _refusal(verdict, policy, origin), reason=f"{verdict.blocked.rule.value}: {verdict.blocked.term}"
                )
            cleared.append(request.model_copy(update={
                "nsfw_allowed": verdict.nsfw_allowed, "flagged": verdict.flagged is not None,
            }))
            verdicts.append(verdict)
        return Screened(cleared, verdicts)

    async def ask_providers(
        self,
        jobs: Sequence[Job],
        providers: Mapping[str, Provider],
        styles: Mapping[str, StyleConfig],
    ) -> None:
        """For servers with ``moderation = "provider"``: each job's provider checks its prompt, if it can."""
        asked: set[tuple[str, str]] = set()
        for job in jobs:
            provider = providers[job.provider]
            text = effective_prompt(job.request, styles).prompt
            if not isinstance(provider, SupportsModeration) or (job.provider, text) in asked:
                continue
            asked.add((job.provider, text))
            try:
                result = await provider.moderate(text)
            except ProviderError as exc:
                log.warning("moderation check by %s failed: %s", job.provider, exc.message)
                raise ContentRejected(
                    messages.moderation_unavailable(job.provider), reason="moderation unavailable",
                    provider=job.provider,
                ) from exc
            if result.flagged:
                hit = Hit(Rule.PROVIDER, ", ".join(result.categories) or "flagged", text)
                await self._record(job.origin, AuditAction.REFUSED, hit, text)
                raise ContentRejected(
                    messages.provider_flagged(job.provider, result.categories),
                    reason=f"provider: {hit.term}", provider=job.provider,
                )

    async def note_queued(self, jobs: Sequence[Job], screened: Screened) -> None:
        """Audit the overrides and flagged outputs of jobs that were queued."""
        for job, verdict in zip(jobs, screened.verdicts, strict=True):
            if verdict.overridden is not None:
                await self._record(job.origin, AuditAction.OVERRIDDEN, verdict.overridden, job.request.prompt, job.id)
            elif verdict.flagged is not None:
                await self._record(job.origin, AuditAction.FLAGGED, verdict.flagged, job.request.prompt, job.id)

    async def note_settings(self, origin: Origin, scope: str, changed: Mapping[str, Any]) -> None:
        """Audit a change of moderation settings (``changed``: the keys and their new values)."""
        if not changed:
            return
        shown = "; ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in sorted(changed.items()))
        await self._storage.record_audit(AuditEntry(
            at=self._clock.now(), platform=origin.platform, server_id=origin.server_id,
            channel_id=origin.channel_id, user_id=origin.user_id, user_name=origin.user_name,
            action=AuditAction.SETTINGS_CHANGED, rule=f"{scope}_settings", term=", ".join(sorted(changed)),
            prompt=excerpt(shown),
        ))

    async def _record(
        self, origin: Origin, action: AuditAction, hit: Hit, prompt: str, job_id: str | None = None
    ) -> None:
        await self._storage.record_audit(AuditEntry(
            at=self._clock.now(), platform=origin.platform, server_id=origin.server_id,
            channel_id=origin.channel_id, user_id=origin.user_id, user_name=origin.user_name,
            action=action, rule=hit.rule.value, term=hit.term, prompt=excerpt(prompt), job_id=job_id,
        ))


def _refusal(verdict: Verdict, policy: str | None, origin: Origin) -> str:
    hit = verdict.blocked
    assert hit is not None
    # A word is named as the server listed it; for a pattern, what it matched says more.
    shown = hit.matched if hit.rule is Rule.BLOCKED_PATTERN else hit.term
    if hit.rule is Rule.NSFW_WORD:
        return messages.nsfw_not_here(
            shown, policy or "", origin.platform in MARKED_NSFW_PLATFORMS, verdict.suggestion, admin=origin.is_admin
        )
    return messages.content_blocked(hit.rule.value, shown, verdict.suggestion, admin=origin.is_admin)
