"""The providers that run on this machine, with the folders where their runtime keeps its models."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from syncd.errors import SyncdError
from syncd.model import Kind, ProviderSpec
from syncd.providers.blocks import custom_providers, host_port, is_loopback
from syncd.providers.credentials import load_auth, provider_spec
from syncd.providers.stores import LocalStore, Process, folders_for, guess_runtime, process_on_port
from syncd.settings import Settings
from syncd.sync.documents import read_parsed

__all__ = ["LocalStore", "SpecCache", "local_stores"]


def _blocks(target: Path) -> Mapping[str, Mapping[str, object]]:
    try:
        return custom_providers(read_parsed(target)[1])
    except SyncdError:
        return {}


def local_stores(
    targets: Iterable[Path],
    settings: Settings,
    kinds: Mapping[str, Kind],
    *,
    known: Mapping[tuple[Path, str], str] | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    proc: Path = Path("/proc"),
) -> list[LocalStore]:
    """Every enabled provider whose baseURL is on this machine, with its store's folders (if found).

    `known`: the kind each (target, provider) was last fetched as; `kinds`: the kind probed for
    each base URL (the fetch cache). A provider not fetched yet is recognised by the runtime's
    usual port, else by the process behind its port.
    """
    known = known or {}
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    servers: dict[int, Process | None] = {}
    out: list[LocalStore] = []
    for target in targets:
        for pid, block in _blocks(target).items():
            policy = settings.policy(pid)
            try:
                spec = provider_spec(pid, block, target, {}, kind=policy.kind)
            except SyncdError:
                continue
            if not policy.enabled or spec is None or not is_loopback(spec.base_url):
                continue
            where = host_port(spec.base_url)
            port = where[1] if where else None

            def server(port: int | None = port) -> Process | None:
                # the /proc walk is the costly part: only when the kind or the folders need it
                if port is None:
                    return None
                if port not in servers:
                    servers[port] = process_on_port(port, proc)
                return servers[port]

            kind = policy.kind or known.get((target, pid)) or kinds.get(spec.base_url)
            runtime = str(kind) if kind else (
                guess_runtime(None, port, None) or guess_runtime(None, None, server()))
            folders = folders_for(runtime, env, home, None)
            if not folders and runtime in (Kind.OLLAMA, Kind.LLAMACPP):
                folders = folders_for(runtime, env, home, server())
            out.append(LocalStore(target, pid, runtime, folders,
                                  rescan=runtime == Kind.LLAMACPP and bool(folders)))
    return out


class SpecCache:
    """Each local provider's spec, read again only when its target or auth.json changed on disk."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._specs: dict[tuple[Path, str], tuple[object, ProviderSpec | None]] = {}

    def get(self, target: Path, pid: str, auth_file: Path) -> ProviderSpec | None:
        key = (_stamp(target), _stamp(auth_file))
        cached = self._specs.get((target, pid))
        if cached is not None and cached[0] == key:
            return cached[1]
        block = _blocks(target).get(pid)
        spec = None
        if block is not None:
            try:
                spec = provider_spec(pid, block, target, load_auth(auth_file),
                                     kind=self.settings.policy(pid).kind)
            except SyncdError:
                spec = None
        self._specs[(target, pid)] = (key, spec)
        return spec


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
