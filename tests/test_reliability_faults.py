"""Every fault mode of the fakes against a daemon with 3 providers: nothing removed, nothing leaked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import pytest
from fakes import FAULTS, FakeProvider
from reliability_kit import write_settings

from syncd import jsonc
from syncd.daemon.run import Daemon
from syncd.engine import Engine
from syncd.settings import load_settings

ROUNDS = 2


def client_fds(fake_ports: set[int]) -> int:
    """Open descriptors of this process, leaving out the fakes' own sockets (they live here too)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            is_socket = os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed since listdir
        if is_socket:
            try:
                with socket.socket(fileno=os.dup(fd)) as s:
                    name = s.getsockname()
                if isinstance(name, tuple) and name[1] in fake_ports:
                    continue
            except OSError:
                pass
        count += 1
    return count


async def until(check: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return bool(check())  # type: ignore[operator]


def models(target: Path, pid: str) -> set[str]:
    return set(jsonc.parse(target.read_text())["provider"][pid].get("models") or {})


@pytest.mark.slow
async def test_fault_modes_remove_nothing_leak_nothing_and_stall_no_other_provider(
    tmp_path: Path,
) -> None:
    faulty, ollama, lms = FakeProvider("openai"), FakeProvider("ollama"), FakeProvider("lmstudio")
    fakes = {"faulty": faulty, "ollama": ollama, "lms": lms}
    ports = {f.port for f in fakes.values()}
    faulty.retry_after = 1
    os.environ["SYNCD_CONFIG"] = str(write_settings(
        tmp_path, "grace: 1, local_interval: '1s', timeouts: { connect: '1s', read: '0.4s', total: '1s' }"))
    target = tmp_path / "opencode.json"
    target.write_text(jsonc.modify("{}\n", ["provider"], {
        pid: {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": f.base_url}, "models": {}}
        for pid, f in fakes.items()}))
    daemon = Daemon(Engine(load_settings(), cli_configs=[str(target)]))
    stop = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(stop))
    samples: list[tuple[int, int]] = []
    try:
        assert await until(lambda: all(models(target, p) for p in fakes), 15), target.read_text()
        managed = {pid: models(target, pid) for pid in fakes}
        for rnd in range(ROUNDS):
            for fault in [f for f in FAULTS if f is not None]:
                faulty.fault = fault
                seen = {pid: len(f.requests) for pid, f in fakes.items()}
                # the faulty provider is asked again, and the others keep their 1 s schedule (the least)
                assert await until(lambda s=seen: len(faulty.requests) > s["faulty"]
                                   and all(len(fakes[p].requests) >= s[p] + 2 for p in ("ollama", "lms")),
                                   12), f"round {rnd}, fault {fault}: a provider stalled"
                await asyncio.sleep(0.3)  # let the faulty cycle finish and write, if it would
                for pid, ids in managed.items():
                    assert ids <= models(target, pid), f"{fault} removed models of {pid}"
            faulty.fault = None
            seen_ok = len(faulty.requests)
            assert await until(lambda s=seen_ok: len(faulty.requests) > s + 1, 12)
            await asyncio.sleep(0.5)
            samples.append((len(asyncio.all_tasks()), client_fds(ports)))
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(serving, 15)
        for fake in fakes.values():
            fake.close()
    (tasks0, fds0), *later = samples
    for tasks, fds in later:  # the first round set up pools and jobs; repeats must add nothing
        assert tasks <= tasks0 + 1, samples
        assert fds <= fds0 + 3, samples
    print(f"tasks/fds after each round of {len(FAULTS) - 1} faults: {samples}")
