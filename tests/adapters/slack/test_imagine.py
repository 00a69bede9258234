"""/imagine end to end, in both transports: ack, card, throttled edits, files in the card's thread."""

from __future__ import annotations

import json

from bot.jobs import JobStatus
from tests.adapters.slack.conftest import World


async def test_imagine_acks_fast_then_card_edits_and_files_in_the_thread(world: World) -> None:
    fake = world.fake
    before = await world.job_ids()
    sent = await world.driver.slash("/imagine", "a lighthouse at dusk --n 2", user=world.alice,
                                    channel=world.channel)
    assert sent.acked.status == 200 and sent.acked.seconds < 3.0
    (job,) = await world.new_jobs(before)
    job = await world.finished(job.id)
    assert job.status is JobStatus.SUCCEEDED
    card = world.card(job)
    assert card.thread_ts is None and card.via == "chat.postMessage" and card.edits
    # The final card names the result and carries its buttons, state in the action ids.
    assert "Done" in json.dumps(card.blocks)
    assert card.action_ids()[:4] == [f"ib:u:{job.id}:1", f"ib:u:{job.id}:2", f"ib:v:{job.id}:1",
                                     f"ib:v:{job.id}:2"]
    assert {f"ib:r:{job.id}", f"ib:f:{job.id}", f"ib:d:{job.id}"} <= set(card.action_ids())
    # One upload call for all files, into the card's thread, the parameters in its message.
    (upload,) = [u for u in fake.uploads if u.thread_ts == card.ts]
    assert [f.filename for f in upload.files] == [f"{job.id}-grid.png", f"{job.id}-1.png", f"{job.id}-2.png"]
    assert len(fake.calls_to("files.completeUploadExternal")) == 1
    assert "a lighthouse at dusk" in upload.comment and f"job `{job.id}`" in upload.comment
    assert "seed" in upload.comment and "sketch" in upload.comment
    (reply,) = world.thread(job)
    assert reply.files == [f.id for f in upload.files]
    # Cards never go through response_url; the answers are within limits and the spec.
    assert not [e for e in fake.ephemerals if e.via == "response_url" and e.user == world.alice]
    assert fake.limiter.rejected == 0
    assert fake.spec.violations == []
