"""Model stores: where each runtime keeps its models, and the daemon running a job when one changes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncd.daemon.schedule import JobKey
from syncd.daemon.stores import StoreWatch
from syncd.providers.listprobe import fingerprint_of
from syncd.providers.stores import (
    LocalStore,
    Process,
    llamacpp_folders,
    lmstudio_folders,
    ollama_folders,
    process_on_port,
)
from syncd.report import ProviderReport, Status, TargetReport
from syncd.settings import load_settings
from syncd.sync.local import local_stores

BOUND = 20.0  # a generous bound for an event to arrive on a loaded machine; never a sleep


# --- where the stores are -------------------------------------------------------------------


def test_ollama_store_is_the_manifests_folder_of_ollama_models_or_the_home_default(tmp_path: Path) -> None:
    custom, home = tmp_path / "custom", tmp_path / "home"
    (custom / "manifests").mkdir(parents=True)
    (home / ".ollama" / "models" / "manifests").mkdir(parents=True)
    found = ollama_folders({"OLLAMA_MODELS": str(custom)}, home)
    assert found[:2] == (custom / "manifests", home / ".ollama" / "models" / "manifests")
    assert custom / "manifests" not in ollama_folders({}, home)


def test_the_ollama_servers_own_models_folder_counts_when_its_environment_is_readable(tmp_path: Path) -> None:
    (tmp_path / "srv" / "manifests").mkdir(parents=True)
    server = Process(("/usr/bin/ollama", "serve"), {"OLLAMA_MODELS": str(tmp_path / "srv")})
    assert tmp_path / "srv" / "manifests" in ollama_folders({}, tmp_path / "home", server)


def test_lm_studio_store_is_its_models_folder_new_or_old(tmp_path: Path) -> None:
    assert lmstudio_folders(tmp_path) == ()
    (tmp_path / ".cache" / "lm-studio" / "models").mkdir(parents=True)
    assert lmstudio_folders(tmp_path) == (tmp_path / ".cache" / "lm-studio" / "models",)
    (tmp_path / ".lmstudio" / "models").mkdir(parents=True)
    assert lmstudio_folders(tmp_path)[0] == tmp_path / ".lmstudio" / "models"


def test_a_llama_cpp_router_is_watched_in_its_models_dir_and_cache_a_single_model_server_not(
    tmp_path: Path,
) -> None:
    models, cache = tmp_path / "gguf", tmp_path / "cache"
    models.mkdir()
    cache.mkdir()
    router = Process(("/opt/llama-server", f"--models-dir={models}", "--port", "8080"),
                     {"LLAMA_CACHE": str(cache)})
    assert llamacpp_folders(router, {}, tmp_path) == (models, cache)
    by_env = Process(("llama-server",), {"LLAMA_ARG_MODELS_DIR": str(models), "LLAMA_CACHE": str(cache)})
    assert llamacpp_folders(by_env, {}, tmp_path) == (models, cache)
    single = Process(("llama-server", "-m", str(models / "a.gguf"), "--models-dir", str(models)), {})
    assert llamacpp_folders(single, {}, tmp_path) == ()
    assert llamacpp_folders(None, {}, tmp_path) == ()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_the_process_behind_a_listening_port_is_found_through_proc() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        found = process_on_port(sock.getsockname()[1])
    assert found is not None
    assert found.argv and Path(found.argv[0]).name.startswith("python")
    assert found.env.get("PATH") == os.environ.get("PATH")


def test_a_fake_proc_tree_maps_a_port_to_its_process(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    header = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
              "timeout inode\n")
    (proc / "net" / "tcp").write_text(
        header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 4242\n")
    (proc / "77" / "fd").mkdir(parents=True)
    (proc / "77" / "fd" / "3").symlink_to("socket:[4242]")
    (proc / "77" / "cmdline").write_bytes(b"llama-server\0--models-dir\0/m\0")
    (proc / "77" / "environ").write_bytes(b"LLAMA_CACHE=/c\0")
    found = process_on_port(8080, proc)
    assert found == Process(("llama-server", "--models-dir", "/m"), {"LLAMA_CACHE": "/c"})
    assert found.option("--models-dir") == "/m"
    assert process_on_port(8081, proc) is None


def test_local_providers_get_their_runtime_and_store_remote_ones_none(tmp_path: Path) -> None:
    store = tmp_path / "ollama-models"
    (store / "manifests").mkdir(parents=True)
    target = tmp_path / "opencode.jsonc"
    target.write_text('{"provider": {\n'
                      '  "ollama": {"options": {"baseURL": "http://127.0.0.1:11434/v1"}},\n'
                      '  "box": {"options": {"baseURL": "http://localhost:9/v1"}},\n'
                      '  "cloud": {"options": {"baseURL": "https://api.example.com/v1"}}\n}}\n')
    found = local_stores([target], load_settings(), {}, env={"OLLAMA_MODELS": str(store)},
                         home=tmp_path / "home", proc=tmp_path / "no-proc",
                         known={(target, "box"): "lmstudio"})
    by_id = {s.provider_id: s for s in found}
    assert set(by_id) == {"ollama", "box"}
    assert by_id["ollama"].runtime == "ollama" and by_id["ollama"].folders[0] == store / "manifests"
    assert by_id["box"].runtime == "lmstudio" and by_id["box"].folders == ()


def test_the_list_fingerprint_is_of_the_ids_alone() -> None:
    a = {"object": "list", "data": [{"id": "m1", "created": 1}, {"id": "m2", "created": 1}]}
    b = {"object": "list", "data": [{"id": "m2", "created": 9}, {"id": "m1", "created": 9}]}
    c = {"object": "list", "data": [{"id": "m1", "created": 9}]}
    assert fingerprint_of(a) == fingerprint_of(b) != fingerprint_of(c)
    assert fingerprint_of({"models": [1]}) != fingerprint_of({"models": [2]})


# --- the watch itself -----------------------------------------------------------------------


@dataclass
class FakeSource:
    """Stands in for the engine: fixed stores, and fingerprints served from a list."""

    stores: list[LocalStore]
    prints: dict[JobKey, list[str | None]] = field(default_factory=dict)
    asked: list[tuple[JobKey, bool]] = field(default_factory=list)

    def local_stores(self, kinds: Mapping[JobKey, str] | None = None) -> Sequence[LocalStore]:
        return self.stores

    async def list_fingerprint(self, target: Path, provider_id: str, *, rescan: bool = False) -> str | None:
        key = (target, provider_id)
        self.asked.append((key, rescan))
        queue = self.prints.get(key, [])
        return queue.pop(0) if len(queue) > 1 else (queue[0] if queue else None)


class Requests:
    def __init__(self) -> None:
        self.keys: list[JobKey] = []
        self.event = asyncio.Event()

    def __call__(self, key: JobKey) -> None:
        self.keys.append(key)
        self.event.set()

    async def next(self) -> JobKey:
        await asyncio.wait_for(self.event.wait(), BOUND)
        self.event.clear()
        return self.keys[-1]


def report(pid: str, *, pending: tuple[str, ...] = (), kind: str = "ollama") -> TargetReport:
    return TargetReport("t", providers=(ProviderReport(pid, Status.OK, kind=kind, pending=pending),))


async def test_a_manifest_written_in_a_store_runs_the_job_of_each_provider_it_serves(tmp_path: Path) -> None:
    manifests = tmp_path / "models" / "manifests"
    (manifests / "registry.ollama.ai" / "library").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    t = tmp_path / "opencode.json"
    source = FakeSource([LocalStore(t, "ollama", "ollama", (manifests,)),
                         LocalStore(t, "studio", "lmstudio", (other,))])
    requests = Requests()
    watch = StoreWatch(source, requests)
    watch.refresh({(t, "ollama"), (t, "studio")})
    assert watch.folders == (manifests, other)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.wait_for(watch.watching.wait(), BOUND)
        await requests.next()
        # a folder new to the watch runs its providers once: for a pull before it was watched
        assert sorted(requests.keys) == [(t, "ollama"), (t, "studio")]
        requests.keys.clear()
        model = manifests / "registry.ollama.ai" / "library" / "qwen3" / "8b"
        model.parent.mkdir()
        model.write_text('{"schemaVersion": 2}')
        assert await requests.next() == (t, "ollama")
        assert requests.keys == [(t, "ollama")]  # the other store saw nothing
    finally:
        watch.stop()
        await asyncio.wait_for(task, BOUND)


async def test_a_llama_cpp_router_is_asked_to_rescan_before_its_job_runs(tmp_path: Path) -> None:
    t = tmp_path / "opencode.json"
    source = FakeSource([LocalStore(t, "llama", "llamacpp", (tmp_path,), rescan=True)])
    requests = Requests()
    watch = StoreWatch(source, requests)
    watch.refresh({(t, "llama")})
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.wait_for(watch.watching.wait(), BOUND)
        assert await requests.next() == (t, "llama")  # newly watched: one run
        (tmp_path / "new.gguf").write_bytes(b"GGUF")
        assert await requests.next() == (t, "llama")
        assert source.asked == [((t, "llama"), True)]  # only the change asked for a rescan
    finally:
        watch.stop()
        await asyncio.wait_for(task, BOUND)


async def test_without_a_store_the_list_is_polled_and_only_a_change_runs_the_job(tmp_path: Path) -> None:
    t = tmp_path / "opencode.json"
    source = FakeSource([LocalStore(t, "ollama", "ollama", ()), LocalStore(t, "gw", "openai", ())],
                        prints={(t, "ollama"): ["a", "a", None, "a", "b", "b"]})
    requests = Requests()
    watch = StoreWatch(source, requests, poll_every=0.01)
    watch.refresh({(t, "ollama"), (t, "gw")})
    assert watch.polled == [(t, "ollama")]  # a gateway on this machine keeps its interval
    task = asyncio.create_task(watch.run())
    try:
        assert await requests.next() == (t, "ollama")
        async def asked(n: int) -> None:
            while len(source.asked) < n:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(asked(8), BOUND)
        assert requests.keys == [(t, "ollama")]  # a -> b once; an unanswered check changes nothing
    finally:
        watch.stop()
        await asyncio.wait_for(task, BOUND)


@contextlib.asynccontextmanager
async def store_started_run(tmp_path: Path) -> AsyncIterator[tuple[Path, StoreWatch, Requests]]:
    """A watch whose local list just changed, once its store-started run was asked for."""
    t = tmp_path / "opencode.json"
    key = (t, "ollama")
    source = FakeSource([LocalStore(t, "ollama", "ollama", ())], prints={key: ["a", "b"]})
    requests = Requests()
    watch = StoreWatch(source, requests, poll_every=0.01, confirm_after=0.01)
    watch.refresh({key})
    task = asyncio.create_task(watch.run())
    try:
        assert await requests.next() == key  # the list changed: the store-started run
        yield t, watch, requests
    finally:
        watch.stop()
        await asyncio.wait_for(task, BOUND)


async def test_a_removal_announced_by_the_store_is_confirmed_by_asking_again_soon(tmp_path: Path) -> None:
    async with store_started_run(tmp_path) as (t, watch, requests):
        watch.after_sync(t, ["ollama"], report("ollama", pending=("gone:1b",)))
        assert await requests.next() == (t, "ollama")  # asked again at once, not at its interval
        watch.after_sync(t, ["ollama"], report("ollama"))  # removed (or back): nothing pending
        watch.after_sync(t, ["ollama"], report("ollama", pending=("x",)))  # a scheduled run's
        await asyncio.sleep(0.1)
        assert requests.keys == [(t, "ollama")] * 2


async def test_a_run_answering_from_before_the_store_changed_does_not_use_up_the_confirmations(
    tmp_path: Path,
) -> None:
    async with store_started_run(tmp_path) as (t, watch, requests):
        watch.after_sync(t, ["ollama"], report("ollama"))  # one in flight, listing it still
        watch.after_sync(t, ["ollama"], report("ollama", pending=("gone:1b",)))  # its follow-up
        assert await requests.next() == (t, "ollama")  # asked again soon all the same


def test_a_kind_learnt_from_a_fetch_looks_for_the_store_again(tmp_path: Path) -> None:
    t = tmp_path / "opencode.json"
    calls: list[Mapping[JobKey, str] | None] = []

    class Source(FakeSource):
        def local_stores(self, kinds: Mapping[JobKey, str] | None = None) -> Sequence[LocalStore]:
            calls.append(dict(kinds or {}))
            runtime = (kinds or {}).get((t, "mine"), "")
            return [LocalStore(t, "mine", runtime, (tmp_path,) if runtime else ())]

    watch = StoreWatch(Source([]), Requests())
    watch.refresh({(t, "mine")})
    assert watch.folders == ()
    watch.after_sync(t, ["mine"], report("mine", kind="ollama"))
    assert watch.folders == (tmp_path,)
    watch.after_sync(t, ["mine"], report("mine", kind="ollama"))
    assert len(calls) == 2  # known now: no more looking


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("inotify and /proc: Linux")
