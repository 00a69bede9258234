"""The terminal surface used by ``imaginebot generate``: a live progress bar and files on disk."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot import messages
from bot.jobs import JobStatus
from bot.surface import Card, Delivery, ThrottlePolicy

TERMINAL_THROTTLE = ThrottlePolicy(per_message_seconds=0.1, window_edits=50, window_seconds=1.0)
BAR_WIDTH = 28


class TerminalSurface:
    """Shows each job's card as one status line and writes finished images to ``out_dir``."""

    name = "cli"
    upload_limit_bytes = 1 << 40
    max_files = 10
    throttle = TERMINAL_THROTTLE

    def __init__(self, out_dir: Path, *, stream: TextIO | None = None) -> None:
        self.out_dir = out_dir
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self.saved: dict[str, list[Path]] = {}
        self.errors: dict[str, str] = {}
        self._done: dict[str, asyncio.Event] = {}

    def done_event(self, job_id: str) -> asyncio.Event:
        return self._done.setdefault(job_id, asyncio.Event())

    async def show(self, card: Card) -> dict[str, str] | None:
        self._line(card.job.id, _status_text(card), final=card.final)
        if card.final and card.status is not JobStatus.SUCCEEDED:
            self.errors[card.job.id] = card.error or card.status.value
            self.done_event(card.job.id).set()
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        paths = await asyncio.to_thread(self._write, delivery)
        self.saved[delivery.job.id] = paths
        self.done_event(delivery.job.id).set()
        return {"files": ",".join(str(p) for p in paths)}

    def _write(self, delivery: Delivery) -> list[Path]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for out in delivery.files:
            path = self.out_dir / out.filename
            path.write_bytes(out.data)
            paths.append(path)
        return paths

    def _line(self, job_id: str, text: str, *, final: bool) -> None:
        if self._interactive:
            end = "\n" if final else ""
            self._stream.write(f"\r\x1b[2K{job_id}  {text}{end}")
        elif final or not text.startswith("["):
            self._stream.write(f"{job_id}  {text}\n")
        self._stream.flush()


def _status_text(card: Card) -> str:
    if card.status is JobStatus.QUEUED:
        return messages.queued(card.position, card.eta_seconds)
    if card.status is JobStatus.RUNNING:
        fraction = card.fraction or 0.0
        filled = round(BAR_WIDTH * fraction)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"[{bar}] {round(100 * fraction):3d} % {card.step_text}"
    if card.status is JobStatus.SUCCEEDED:
        return messages.finished(None, card.served_by, card.job.provider)
    if card.status is JobStatus.CANCELLED:
        return card.error or messages.CANCELLED
    return messages.failed(card.error or "unknown error")
