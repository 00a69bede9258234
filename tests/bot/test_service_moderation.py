"""Moderation through the service: refusals that explain themselves, overrides, NSFW by channel, the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.config import config_from_dict
from bot.errors import ContentRejected, InvalidRequest, NotAllowed, ProviderUnavailable
from bot.generation import ModerationResult, SupportsModeration
from bot.jobs import JobStatus, Origin
from bot.moderation import AuditAction
from providers.registry import build_providers
from providers.sketch import SketchProvider
from tests.conftest import AppFactory
from tests.fakes.surface import RecordingSurface

ALICE = Origin(platform="web", server_id="local", channel_id="general", user_id="alice", user_name="Alice")
ADMIN = Origin(platform="web", server_id="local", channel_id="general", user_id="root", is_admin=True)
LOUNGE_ADMIN = Origin(platform="web", server_id="local", channel_id="lounge", user_id="root", is_admin=True)
LOUNGE = Origin(platform="web", server_id="local", channel_id="lounge", user_id="alice")
GUILD_ADMIN = Origin(platform="discord", server_id="g1", channel_id="art", user_id="root", is_admin=True)
ART = Origin(platform="discord", server_id="g1", channel_id="art", user_id="ann")
AFTER_DARK = Origin(platform="discord", server_id="g1", channel_id="after-dark", user_id="ann", nsfw_channel=True)

POLICY = {"blocked_words": "gore, hot dog", "blocked_patterns": r"n[i1]pp?les?", "allowed_words": "scunthorpe"}
GENEROUS = {"per_user_per_minute": 600.0, "burst": 100, "max_queued_per_user": 50}


async def policed(make_app: AppFactory) -> tuple[App, RecordingSurface]:
    app, surface = await make_app(limits=GENEROUS)
    await app.service.set_settings(ADMIN, POLICY, scope="server")
    return app, surface


async def audit(app: App, origin: Origin = ADMIN) -> list[Any]:
    return (await app.service.audit_log(origin, limit=50)).items


@pytest.mark.parametrize(
    ("prompt", "fragments"),
    [
        ("a gore scene --n 1", ['blocks "gore" (blocked word)', 'Try: "a scene"']),
        ("a n1pple study --n 1", ['blocks "n1pple" (blocked pattern)', 'Try: "a study"']),
        ("a nude portrait --n 1", ['"nude" is adult or graphic content', "in this channel", 'Try: "a portrait"']),
    ],
)
async def test_each_rule_refuses_with_its_name_and_a_rewrite_and_stores_only_the_audit_row(
    make_app: AppFactory, prompt: str, fragments: list[str]
) -> None:
    app, surface = await policed(make_app)
    with pytest.raises(ContentRejected) as refused:
        await app.service.submit(prompt, ALICE)
    for fragment in fragments:
        assert fragment in refused.value.message
    assert "--override" not in refused.value.message  # members are not told about the admin's switch
    assert (await app.service.history("web", "general")).items == []
    assert surface.frames == {}
    [row, _settings] = await audit(app)
    assert (row.action, row.user_id, row.job_id) == (AuditAction.REFUSED, "alice", None)
    assert row.rule in refused.value.reason and row.term in refused.value.reason
    assert row.prompt == prompt.removesuffix(" --n 1")


async def test_admins_are_told_about_override_and_an_override_is_drawn_and_audited(make_app: AppFactory) -> None:
    app, surface = await policed(make_app)
    with pytest.raises(ContentRejected, match="--override"):
        await app.service.submit("a gore scene --n 1", ADMIN)
    [job] = await app.service.submit("a gore scene --n 1 --override", ADMIN)
    assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
    assert job.request.override and job.request.flagged  # gore is graphic: its images stay hidden
    rows = await audit(app)
    assert [r.action for r in rows[:2]] == [AuditAction.OVERRIDDEN, AuditAction.REFUSED]
    assert (rows[0].rule, rows[0].term, rows[0].job_id) == ("blocked_word", "gore", job.id)
    with pytest.raises(ContentRejected):
        await app.service.submit("a gore scene --override", ALICE)  # a member's --override changes nothing


async def test_a_reroll_is_moderated_afresh(make_app: AppFactory) -> None:
    app, surface = await make_app(limits=GENEROUS)
    [job] = await app.service.submit("a hot dog stand --n 1", ALICE)
    await surface.wait_final(job.id)
    await app.service.set_settings(ADMIN, {"blocked_words": "hot dog"}, scope="server")
    with pytest.raises(ContentRejected, match="hot dog"):
        await app.service.reroll(job.id, ALICE)


async def test_web_channels_open_to_nsfw_flag_their_outputs(make_app: AppFactory) -> None:
    app, surface = await make_app(limits=GENEROUS)
    with pytest.raises(NotAllowed):
        await app.service.set_settings(LOUNGE, {"nsfw": "allow"}, scope="channel")
    with pytest.raises(InvalidRequest, match="channel or server"):
        await app.service.set_settings(LOUNGE, {"nsfw": "allow"})
    await app.service.set_settings(LOUNGE_ADMIN, {"nsfw": "allow"}, scope="channel")
    [job] = await app.service.submit("a nude figure study --n 1", LOUNGE)
    assert job.request.flagged and job.request.nsfw_allowed
    await surface.wait_final(job.id)
    [delivery] = surface.deliveries[job.id]
    assert delivery.flagged and surface.frames[job.id][-1].flagged
    [clean] = await app.service.submit("a lighthouse --n 1", LOUNGE)
    assert clean.request.nsfw_allowed and not clean.request.flagged
    with pytest.raises(ContentRejected, match="adult"):
        await app.service.submit("a nude figure study --n 1", ALICE)  # #general is not open
    flagged = [r for r in await audit(app) if r.action is AuditAction.FLAGGED]
    assert [(r.term, r.job_id, r.channel_id) for r in flagged] == [("nude", job.id, "lounge")]
    await app.service.set_settings(ADMIN, {"nsfw": "block", "nsfw_words": "spicy"}, scope="server")
    [spicy] = await app.service.submit("something spicy --n 1", LOUNGE)  # the channel's "allow" wins
    assert spicy.request.flagged
    with pytest.raises(ContentRejected, match="isn't allowed on this server"):
        await app.service.submit("something spicy --n 1", ALICE)
    await app.service.set_settings(LOUNGE_ADMIN, {"nsfw": "default"}, scope="channel")
    with pytest.raises(ContentRejected, match="on this server"):
        await app.service.submit("a nude figure study --n 1", LOUNGE)


async def test_discord_allows_nsfw_only_in_age_restricted_channels(make_app: AppFactory) -> None:
    app, _ = await make_app(limits=GENEROUS)
    app.add_surface(RecordingSurface(name="discord"))
    with pytest.raises(InvalidRequest, match="age-restricted"):
        await app.service.set_settings(GUILD_ADMIN, {"nsfw": "allow"}, scope="server")
    with pytest.raises(ContentRejected, match="outside age-restricted"):
        await app.service.submit("a nude portrait --n 1", ART)
    [job] = await app.service.submit("a nude portrait --n 1", AFTER_DARK)
    assert job.request.flagged and job.request.nsfw_allowed
    await app.service.set_settings(GUILD_ADMIN, {"nsfw": "block"}, scope="server")
    with pytest.raises(ContentRejected, match="on this server"):
        await app.service.submit("a nude portrait --n 1", AFTER_DARK)


async def test_only_admins_read_the_audit_log_and_settings_changes_are_in_it(make_app: AppFactory) -> None:
    app, _ = await policed(make_app)
    with pytest.raises(NotAllowed, match="moderation log"):
        await app.service.audit_log(ALICE)
    await app.service.set_settings(ADMIN, {"count": 2}, scope="server")  # not a moderation key: not logged
    [row] = await audit(app)
    assert (row.action, row.rule, row.user_id) == (AuditAction.SETTINGS_CHANGED, "server_settings", "root")
    assert row.term == "allowed_words, blocked_patterns, blocked_words" and "scunthorpe" in row.prompt
    for n in range(5):
        with pytest.raises(ContentRejected):
            await app.service.submit(f"gore {n}", ALICE)
    first = await app.service.audit_log(ADMIN, limit=4)
    second = await app.service.audit_log(ADMIN, limit=4, cursor=first.next_cursor)
    assert [r.prompt for r in first.items] == ["gore 4", "gore 3", "gore 2", "gore 1"]
    assert [r.prompt for r in second.items] == ["gore 0", row.prompt] and second.next_cursor is None
    assert len((await app.service.audit_log(ADMIN, user_id="alice")).items) == 5
    other = Origin(platform="web", server_id="elsewhere", channel_id="general", user_id="root", is_admin=True)
    assert (await app.service.audit_log(other)).items == []


# --- the provider's moderation check -------------------------------------------------------------------
class CheckingSketch(SketchProvider):
    """The sketch provider with a moderation check that flags one word (a test double)."""

    def __init__(self, *args: Any, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []
        self.fail = fail

    async def moderate(self, text: str) -> ModerationResult:
        self.asked.append(text)
        if self.fail:
            raise ProviderUnavailable("moderation is down", provider=self.name)
        flagged = "harm" in text.split()
        return ModerationResult(flagged=flagged, categories=("violence", "self_harm") if flagged else ())


@pytest.fixture
async def checked(tmp_path: Path) -> AsyncIterator[tuple[App, CheckingSketch]]:
    config = config_from_dict({
        "storage": {"dir": str(tmp_path / "data")},
        "providers": {"sketch": {"type": "sketch", "delay": 0.05, "size": 64}},
        "limits": GENEROUS,
    }, environ={})
    [base] = build_providers(config.providers, clock=None).values()  # type: ignore[arg-type]
    provider = CheckingSketch("sketch", base.settings)
    app = await build_app(config, providers={"sketch": provider})
    app.add_surface(RecordingSurface())
    await app.start()
    yield app, provider
    await app.stop(grace_seconds=0)


async def test_the_providers_check_runs_only_when_the_server_asks(checked: tuple[App, CheckingSketch]) -> None:
    app, provider = checked
    assert isinstance(provider, SupportsModeration)
    await app.service.submit("a harm scene --n 1", ALICE)
    assert provider.asked == []
    await app.service.set_settings(ADMIN, {"moderation": "provider"}, scope="server")
    with pytest.raises(ContentRejected, match=r"sketch's moderation check flagged this prompt \(violence, self harm\)"):
        await app.service.submit("a harm scene --n 1", ALICE)
    assert provider.asked == ["a harm scene"]
    [row, _] = await audit(app)
    assert (row.action, row.rule, row.term) == (AuditAction.REFUSED, "provider", "violence, self_harm")
    [job] = await app.service.submit("a calm lake --n 1", ALICE)
    assert provider.asked[-1] == "a calm lake" and job.status is JobStatus.QUEUED
    provider.fail = True
    with pytest.raises(ContentRejected, match="isn't answering"):
        await app.service.submit("a calm sea --n 1", ALICE)
    assert [j.request.prompt for j in (await app.service.history("web", "general")).items] == [
        "a calm lake", "a harm scene"
    ]


async def test_a_provider_without_a_check_is_not_asked(make_app: AppFactory) -> None:
    app, surface = await make_app()
    assert not isinstance(app.providers["sketch"], SupportsModeration)  # sketch has no model to ask
    await app.service.set_settings(ADMIN, {"moderation": "provider"}, scope="server")
    [job] = await app.service.submit("a harm scene --n 1", ALICE)
    assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED
