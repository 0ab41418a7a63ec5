"""One target's work in the daemon: its providers fetched side by side, and one serial writer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

R = TypeVar("R")

# Answers that arrive within this long of the first one waiting are planned and written as one.
COALESCE = 0.1
# A target is written at most once per this long: under churn, what arrives meanwhile becomes
# the next write (one parse, one plan, one replace, one state record for all of it).
WRITE_GAP = 0.5


class TargetRunner(Generic[R]):
    """Everything that changes one target goes through here, one step at a time.

    A provider's run is a fetch (`fetch`, side by side with the target's other providers, so a
    hung server delays only its own job) and then its answer's turn at the writer — unless
    `fetch` finished the run itself (returned None: the answer changes nothing). The writer
    takes the answers that arrived close together — it waits up to `window` after the first, and
    no longer once no fetch is in flight — and hands them to `apply` as one, so they become one
    plan and one write; after a write (`apply` returned True) the next waits until `gap` has
    passed. Revalidations after a hand edit (`revalidate`) run on the same writer, between
    writes, never beside one, and first. A provider asked for while its run is in flight gets
    one follow-up run once its answer is written, however often it is asked.
    """

    def __init__(
        self,
        target: Path,
        fetch: Callable[[Path, list[str]], Awaitable[R | None]],
        apply: Callable[[Path, list[tuple[list[str], R]]], Awaitable[bool]],
        revalidate: Callable[[Path], Awaitable[None]],
        *,
        window: float = COALESCE,
        gap: float = WRITE_GAP,
    ) -> None:
        self.target = target
        self._fetch = fetch
        self._apply = apply
        self._revalidate = revalidate
        self._window = window
        self._gap = gap
        self._wrote_at = -gap  # monotonic time of the last apply that wrote
        self.running: set[str] = set()  # fetched, or waiting for the writer
        self.pending: set[str] = set()  # asked for again while running: one follow-up run
        self._fetching: set[asyncio.Task[None]] = set()
        self._answers: list[tuple[list[str], R]] = []  # fetched, not yet written
        self._revalidate_wanted = False
        self._news = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    # -- asking ------------------------------------------------------------------------------

    def request(self, provider_ids: Iterable[str] = (), *, revalidate: bool = False) -> None:
        """Start what can start now; the rest runs once its provider's run in flight is written."""
        if self._closed:
            return
        if revalidate:
            self._revalidate_wanted = True
            self._wake()
        ids = set(provider_ids)
        self.pending |= ids & self.running
        now = sorted(ids - self.running)
        if now:
            self.running.update(now)
            self._idle.clear()
            task = asyncio.ensure_future(self._fetch_one(now))
            task.set_name(f"syncd fetch {','.join(now)} @ {self.target}")
            self._fetching.add(task)
            task.add_done_callback(self._fetching.discard)

    async def drained(self) -> None:
        """Until nothing is running, waiting or being written."""
        await self._idle.wait()

    # -- stopping ----------------------------------------------------------------------------

    def close(self) -> list[asyncio.Task[None]]:
        """Stop: no new runs, fetches in flight cancelled; returns the writer if it is busy."""
        self._closed = True
        self.pending.clear()
        self._revalidate_wanted = False
        for task in self._fetching:
            task.cancel()
        writer = self._writer
        if writer is None or writer.done():
            return []
        self._answers.clear()  # what was fetched but not yet written is dropped
        self._wake()
        return [writer]

    # -- the work ----------------------------------------------------------------------------

    def _wake(self) -> None:
        self._news.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_loop())
            self._writer.set_name(f"syncd writer @ {self.target}")

    async def _fetch_one(self, batch: list[str]) -> None:
        try:
            answer = await self._fetch(self.target, batch)
        except BaseException:
            self.running.difference_update(batch)
            self._settle_idle()
            raise
        if answer is None:
            self._finished(batch)
            self._settle_idle()
            return
        self._answers.append((batch, answer))
        self._wake()

    async def _write_loop(self) -> None:
        try:
            while not self._closed:
                self._news.clear()
                if self._revalidate_wanted:
                    self._revalidate_wanted = False
                    await self._revalidate(self.target)
                    continue  # answers that came meanwhile are planned from what it learned
                if not self._answers:
                    if self._settle_idle():
                        return
                    await self._news.wait()
                    continue
                await self._gather()
                if self._revalidate_wanted:
                    continue  # a save came: learn from it first
                answers, self._answers = self._answers, []
                if answers and not self._closed and await self._apply(self.target, answers):
                    self._wrote_at = time.monotonic()
                self._finished([pid for ids, _ in answers for pid in ids])
        finally:
            self._settle_idle()

    async def _gather(self) -> None:
        """Wait up to `window` for the answers still being fetched (not at all when none is), and
        until `gap` has passed since the last write; a revalidation asked for ends the wait."""
        deadline = time.monotonic() + self._window
        spaced = self._wrote_at + self._gap
        while not self._revalidate_wanted and not self._closed:
            now = time.monotonic()
            fetching = any(not t.done() for t in self._fetching)
            left = max(spaced - now, deadline - now if fetching else 0.0)
            if left <= 0:
                return
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), timeout=left)

    def _finished(self, written: list[str]) -> None:
        again = sorted(self.pending.intersection(written))
        self.pending.difference_update(again)
        self.running.difference_update(written)
        if again and not self._closed:
            self.request(again)

    def _settle_idle(self) -> bool:
        idle = not self.running and not self._answers and not self._revalidate_wanted
        if idle:
            self._idle.set()
        return idle
