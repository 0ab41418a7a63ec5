"""`syncd run` following an Ollama model store: a pull or an `ollama rm` reaches the config without a poll."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.fakes import FakeProvider, fake_provider, wait_until  # noqa: F401  (fixture)
from tests.test_daemon_e2e import (  # noqa: F401  (fixture)
    DaemonProc,
    daemon,
    ev,
    models_in,
    settings_file,
    synced,
    target,
)

Factory = Callable[..., FakeProvider]
PULLED = {"id": "llama3.2:3b", "context": 131072, "tools": True}


def manifest(store: Path, model_id: str) -> Path:
    """Where Ollama writes a pulled model's manifest (manifest/paths.go, types/model/name.go)."""
    name, tag = model_id.split(":")
    return store / "manifests" / "registry.ollama.ai" / "library" / name / tag


def pull(fake: FakeProvider, store: Path, model: dict[str, object]) -> None:
    """What `ollama pull` does as seen from outside: the server lists it once the manifest is written."""
    fake.models.append(model)
    path = manifest(store, str(model["id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schemaVersion": 2, "layers": []}))


def remove(fake: FakeProvider, store: Path, model_id: str) -> None:
    """What `ollama rm` does (manifest/manifest.go: Remove, then PruneDirectory)."""
    fake.models[:] = [m for m in fake.models if m["id"] != model_id]
    path = manifest(store, model_id)
    path.unlink()
    folder = path.parent
    while folder.name != "manifests" and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def started(isolated_home: Path, fake: FakeProvider, daemon: Callable[..., DaemonProc],  # noqa: F811
            store: Path, grace: int) -> tuple[Path, DaemonProc]:
    cfg = target(isolated_home, {"ollama": fake})
    # the schedule never runs in these tests: every change after the first cycle is the store's
    settings = settings_file(isolated_home, [cfg], extra=f"grace: {grace}", local_interval="1h")
    d = daemon(settings, env={"OLLAMA_MODELS": str(store)})
    d.ready()
    d.wait(ev("model stores watched", folders=[str(store / "manifests")]))
    return cfg, d


def test_a_pull_and_an_rm_reach_the_config_through_the_store_alone(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    store = isolated_home / "ollama-models"
    (store / "manifests").mkdir(parents=True)
    ol = fake_provider("ollama")
    cfg, d = started(isolated_home, ol, daemon, store, grace=2)

    at = d.mark()
    pull(ol, store, PULLED)
    d.wait(synced("ollama", added=1), since=at)
    assert "llama3.2:3b" in models_in(cfg, "ollama")

    at = d.mark()
    remove(ol, store, "llama3.2:3b")
    # grace 2: the store's run finds it gone (pending), the confirming run a moment later removes it
    first = d.wait(synced("ollama"), since=at)
    assert first["removed"] == 0
    d.wait(synced("ollama", removed=1), since=at)
    assert "llama3.2:3b" not in models_in(cfg, "ollama")
    assert d.stop() == 0


def test_without_a_readable_store_a_changed_list_is_noticed_by_the_fast_poll(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    settings = settings_file(isolated_home, [cfg], extra="grace: 1", local_interval="1h")
    d = daemon(settings, env={"OLLAMA_MODELS": str(isolated_home / "no-such-folder")})
    d.ready()
    assert wait_until(lambda: "/v1/models" in ol.paths(), timeout=20)  # the poll saw the list first
    at = d.mark()
    ol.models.append(PULLED)
    d.wait(ev("model list changed", provider="ollama"), since=at)
    d.wait(synced("ollama", added=1), since=at)
    assert "llama3.2:3b" in models_in(cfg, "ollama")
    assert d.stop() == 0
