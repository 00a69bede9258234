"""The ComfyUI provider against the fake ComfyUI (HTTP and websocket), through its real aiohttp client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import images as imaging
from bot.clock import FakeClock
from bot.errors import ConfigError, ProviderBadRequest, ProviderUnavailable
from bot.request import AspectRatio, JobKind
from providers.comfyui import ComfyUIProvider
from tests.fakes.a1111_api import FakeA1111
from tests.fakes.comfyui_api import CHECKPOINTS, FakeComfyUI
from tests.fakes.provider_http import png
from tests.providers.conftest import Progress, make_call, provider, run
from tests.providers.selfhosted_support import eventually, pumping

ROOT = Path(__file__).resolve().parents[2]
TXT2IMG = str(ROOT / "examples" / "comfyui" / "txt2img.json")
IMG2IMG = str(ROOT / "examples" / "comfyui" / "img2img.json")
BINDINGS = {"prompt": "6.text", "negative": "7.text", "seed": "3.seed", "width": "5.width", "height": "5.height",
            "steps": "3.steps", "cfg": "3.cfg", "batch": "5.batch_size"}
IMG2IMG_BINDINGS = {"prompt": "Positive.text", "negative": "Negative.text", "seed": "KSampler.seed",
                    "image": "Load Image.image", "denoise": "KSampler.denoise"}


@pytest.fixture
async def comfy() -> AsyncIterator[FakeComfyUI]:
    fake = FakeComfyUI()
    await fake.start()
    yield fake
    await fake.close()


def comfyui(fake: FakeComfyUI | str | list[str], clock: FakeClock | None = None, **settings: Any) -> ComfyUIProvider:
    url = fake if isinstance(fake, str | list) else f"http://127.0.0.1:{fake.port}"
    section = {"type": "comfyui", "base_url": url, "workflow": TXT2IMG, "bindings": BINDINGS, **settings}
    built = provider("comfy", section, clock)
    assert isinstance(built, ComfyUIProvider)
    return built


def prompt_body(fake: FakeComfyUI, index: int = -1) -> dict[str, Any]:
    return [r.json for r in fake.received if r.path == "/prompt"][index]


async def test_the_prompt_goes_to_the_sockets_client_id_with_the_bindings_filled(comfy: FakeComfyUI) -> None:
    p = comfyui(comfy)
    call = make_call("a lighthouse", count=2, provider=p, negative_prompt="fog", steps=12, cfg=5.5)
    made = await run(p, call)
    body = prompt_body(comfy)
    graph = body["prompt"]
    assert comfy.violations == []  # client_id matched the open websocket's clientId
    assert graph["6"]["inputs"]["text"] == "a lighthouse" and graph["7"]["inputs"]["text"] == "fog"
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"], graph["3"]["inputs"]["cfg"]) == (7, 12, 5.5)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"], graph["5"]["inputs"]["batch_size"]) == \
        (512, 512, 2)
    assert graph["3"]["inputs"]["model"] == ["4", 0]  # links are left alone
    assert len(made) == 2 and all((i.width, i.height, i.seed) == (512, 512, 7) for i in made)
    assert made[0].info["workflow"] == "txt2img.json"
    views = [r for r in comfy.received if r.path == "/view"]
    assert len(views) == 2


async def test_progress_and_binary_preview_frames_reach_the_callback(comfy: FakeComfyUI) -> None:
    p = comfyui(comfy)
    progress = Progress()
    await run(p, make_call(provider=p, steps=4), progress)
    steps = [u.text for u in progress.updates if u.preview is None and u.text.startswith("step ")]
    assert steps == ["step 1/4", "step 2/4", "step 3/4", "step 4/4"]
    previews = [u for u in progress.updates if u.preview is not None]
    assert [u.text for u in previews] == steps  # each preview carries its step, for the card
    assert imaging.image_info(previews[0].preview or b"").mime == "image/webp"


async def test_an_input_image_is_uploaded_and_bound_by_node_title(comfy: FakeComfyUI) -> None:
    p = comfyui(comfy, img2img_workflow=IMG2IMG, img2img_bindings=IMG2IMG_BINDINGS)
    assert p.capabilities.image_input and p.capabilities.variation
    source = png(96, 64, "source")
    call = make_call("same, at night", provider=p, init=source, kind=JobKind.VARIATION, source_job_id="j",
                     source_image_index=0, strength=0.4)
    [image] = await run(p, call)
    graph = prompt_body(comfy)["prompt"]
    name = graph["10"]["inputs"]["image"]
    assert comfy.uploads[name] == source and name.startswith("imaginebot-") and name.endswith(".png")
    assert graph["3"]["inputs"]["denoise"] == 0.4 and graph["6"]["inputs"]["text"] == "same, at night"
    assert (image.width, image.height) == (96, 64)


async def test_an_upscale_workflow_serves_upscales(comfy: FakeComfyUI, tmp_path: Path) -> None:
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
                "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "lanczos",
                                                               "scale_by": 2.0}},
                "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "up", "images": ["2", 0]}}}
    (tmp_path / "up.json").write_text(json.dumps(workflow))
    p = comfyui(comfy, upscale_workflow=str(tmp_path / "up.json"), upscale_bindings={"image": "1.image"})
    assert p.capabilities.upscale and not p.capabilities.image_input
    call = make_call(provider=p, init=png(40, 30, "small"), kind=JobKind.UPSCALE, source_job_id="j",
                     source_image_index=0)
    [image] = await run(p, call)
    assert (image.width, image.height) == (80, 60)


async def test_cancel_interrupts_the_running_prompt_and_propagates(comfy: FakeComfyUI) -> None:
    comfy.hold = True
    p = comfyui(comfy)
    task = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
    await asyncio.wait_for(comfy.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [interrupt] = [r for r in comfy.received if r.path == "/interrupt"]
    assert interrupt.json == {"prompt_id": prompt_body(comfy)["prompt_id"]}


async def test_cancel_while_waiting_takes_the_prompt_off_the_queue(comfy: FakeComfyUI) -> None:
    comfy.hold = True
    p = comfyui(comfy, concurrency=2)
    first = asyncio.create_task(p.generate(make_call("first", provider=p), Progress()))
    await asyncio.wait_for(comfy.started.wait(), 5)
    progress = Progress()
    second = asyncio.create_task(p.generate(make_call("second", provider=p), progress))
    await eventually(lambda: len(comfy.pending) == 1)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    [delete] = [r for r in comfy.received if r.path == "/queue" and r.method == "POST"]
    assert delete.json == {"delete": [prompt_body(comfy, 1)["prompt_id"]]}
    assert comfy.pending == [] and "/interrupt" not in comfy.paths()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_validation_errors_name_the_node(comfy: FakeComfyUI, tmp_path: Path) -> None:
    graph = json.loads(Path(TXT2IMG).read_text())
    graph["4"]["inputs"]["ckpt_name"] = "missing.safetensors"
    (tmp_path / "wf.json").write_text(json.dumps(graph))
    p = comfyui(comfy, workflow=str(tmp_path / "wf.json"))
    with pytest.raises(ProviderBadRequest, match=r"node 4 \(CheckpointLoaderSimple\): ckpt_name: 'missing"):
        await run(p, make_call(provider=p))


@pytest.mark.parametrize(("message", "error"), [
    ("mat1 and mat2 shapes cannot be multiplied", ProviderBadRequest),
    ("CUDA out of memory. Tried to allocate 2.00 GiB", ProviderUnavailable),
])
async def test_execution_errors_are_classified(comfy: FakeComfyUI, message: str, error: type[Exception]) -> None:
    comfy.fail_with = message
    p = comfyui(comfy)
    with pytest.raises(error, match=r"failed in node 3 \(KSampler\)"):
        await run(p, make_call(provider=p))


async def test_a_dropped_socket_is_followed_through_history(comfy: FakeComfyUI) -> None:
    comfy.drop_socket = True
    comfy.steps_delay = 0.01
    clock = FakeClock()
    p = comfyui(comfy, clock, poll_seconds=1.0)
    async with pumping(clock, step=0.5):
        [image] = await run(p, make_call(provider=p, steps=5))
    assert image.width == 512
    assert sum(1 for path in comfy.paths() if path.startswith("/history/")) >= 2


async def test_without_a_websocket_the_prompt_is_followed_through_history(comfy: FakeComfyUI) -> None:
    comfy.websocket = False
    clock = FakeClock()
    p = comfyui(comfy, clock)
    progress = Progress()
    async with pumping(clock, step=0.5):
        [image] = await run(p, make_call(provider=p), progress)
    assert image.width == 512 and progress.updates == []
    assert comfy.violations == ["client_id does not match an open websocket: progress would go nowhere"]


# --- config: a bad workflow fails when the bot starts ---------------------------------------------
def _write(tmp_path: Path, graph: Any) -> str:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(graph))
    return str(path)


def _graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(Path(TXT2IMG).read_text())
    return graph


@pytest.mark.parametrize(("workflow", "bindings", "expected"), [
    (None, BINDINGS, "the workflow file .*nope.json does not exist"),
    ({"nodes": [], "links": []}, BINDINGS, r'UI workflow; export it with "Save \(API Format\)"'),
    (_graph(), {**BINDINGS, "seed": "99.seed"}, r"bindings\.seed: there is no node '99' in .*wf\.json"),
    (_graph(), {**BINDINGS, "seed": "3.sed"},
     r"bindings\.seed: node '3' \(KSampler\) in .*wf\.json has no input 'sed'"),
    (_graph(), {**BINDINGS, "seed": "3.model"}, r"input 'model' of node '3' \(KSampler\) .* is wired to node '4'"),
    (_graph(), {**BINDINGS, "seed": "6.text"}, r"bindings\.seed: input 'text' of node '6'.* not a number"),
    (_graph(), {**BINDINGS, "sampler": "3.sampler_name"}, r"bindings\.sampler: unknown binding"),
    (_graph(), {"seed": "3.seed"}, "needs a binding for prompt"),
    (_graph(), {"prompt": "6.text", "width": "5.width"}, "bind both width and height"),
    (_graph(), {**BINDINGS, "seed": "3seed"}, r'should be "NODE\.input"'),
])
def test_a_bad_workflow_fails_at_build_naming_file_node_and_binding(
    tmp_path: Path, workflow: Any, bindings: dict[str, str], expected: str
) -> None:
    path = str(tmp_path / "nope.json") if workflow is None else _write(tmp_path, workflow)
    with pytest.raises(ConfigError, match=expected) as caught:
        provider("comfy", {"type": "comfyui", "base_url": "http://127.0.0.1:8188", "workflow": path,
                           "bindings": bindings})
    assert caught.value.args[0].startswith("providers.comfy.")


def test_a_title_that_names_two_nodes_is_ambiguous(tmp_path: Path) -> None:
    graph = _graph()
    graph["7"]["_meta"]["title"] = "Positive"
    with pytest.raises(ConfigError, match=r"the title 'Positive' names several nodes .*\(6, 7\); use a node id"):
        provider("comfy", {"type": "comfyui", "base_url": "http://127.0.0.1:8188", "workflow": _write(tmp_path, graph),
                           "bindings": {"prompt": "Positive.text"}})


def test_capabilities_follow_the_bindings() -> None:
    p = comfyui("http://127.0.0.1:8188", bindings={"prompt": "6.text"})
    caps = p.capabilities
    assert not caps.negative_prompt and caps.fold_negative_prompt and not caps.seed and not caps.deterministic
    assert caps.max_images_per_call == 1 and caps.aspect_ratios == frozenset({"1:1"})
    assert not (caps.image_input or caps.upscale or caps.steps or caps.cfg) and caps.live_previews
    full = comfyui("http://127.0.0.1:8188")
    assert full.capabilities.deterministic and full.capabilities.aspect_ratios is None
    assert full.size_for(AspectRatio.parse("1:1")) == (512, 512)  # from the workflow's own size
    assert full.concurrency == 1


async def test_capabilities_are_checked_before_any_call(comfy: FakeComfyUI) -> None:
    p = comfyui(comfy, bindings={"prompt": "6.text"})
    with pytest.raises(ProviderBadRequest, match="aspect ratio 16:9"):
        await run(p, make_call(provider=p, aspect_ratio="16:9"))
    with pytest.raises(ProviderBadRequest, match="no image input"):
        await run(p, make_call(provider=p, init=png(8, 8, "x")))
    assert comfy.received == []


# --- servers and health -------------------------------------------------------------------------
async def test_health_explains_what_is_wrong(comfy: FakeComfyUI) -> None:
    assert (await comfyui(comfy).health()).ok
    webui = FakeA1111()
    await webui.start()
    try:
        health = await comfyui(webui.port and f"http://127.0.0.1:{webui.port}").health()
        assert not health.ok and "answers, but it is not ComfyUI (no /system_stats)" in health.detail
    finally:
        await webui.close()
    await comfy.close()
    health = await comfyui(comfy).health()
    assert not health.ok and "nothing answers" in health.detail and "is ComfyUI running" in health.detail


async def test_an_unreachable_server_passes_the_call_to_the_next(comfy: FakeComfyUI) -> None:
    dead = FakeComfyUI()
    await dead.start()
    await dead.close()
    p = comfyui([f"http://127.0.0.1:{dead.port}", f"http://127.0.0.1:{comfy.port}"])
    assert p.concurrency == 2
    assert len(await run(p, make_call(provider=p))) == 1
    assert not p.pool.servers[0].up


async def test_checkpoints_are_discovered(comfy: FakeComfyUI) -> None:
    assert await comfyui(comfy).models() == CHECKPOINTS
