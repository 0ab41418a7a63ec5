"""`syncd status` tells each provider's real state under one header row, and `--prune` forgets what
no longer exists (issue 13, item 6). Run as the user runs it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_kit import block, one_json, run, write_json
from fakes import FakeProvider

from syncd.sync.records import target_key

Factory = Callable[..., FakeProvider]


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def rows(*args: str, **kw: Any) -> dict[str, dict[str, Any]]:
    out = run("status", "--json", *args, **kw)
    assert out.returncode == 0, out.stderr
    return {r["provider"]: r for r in one_json(out)["providers"]}


def test_each_provider_shows_ok_failing_never_reached_or_disabled(
    fake_provider: Factory, tmp_path: Path
) -> None:
    good, flaky = fake_provider("ollama"), fake_provider("openai")
    settings = tmp_path / "settings.json5"
    settings.write_text("{ providers: { off: { enabled: false } } }\n")
    env = {"SYNCD_CONFIG": str(settings)}
    cfg = write_json(tmp_path / "opencode.json", {"provider": {
        "good": block(good.base_url), "flaky": block(flaky.base_url),
        "dead": block(closed_url()), "off": block(good.base_url)}})
    assert run("once", "--no-notify", "--config", str(cfg), env=env).returncode == 1
    flaky.fault = "500"
    for _ in range(2):
        assert run("once", "--no-notify", "--config", str(cfg), env=env).returncode == 1
    doc = json.loads(cfg.read_text())
    doc["provider"]["later"] = block(good.base_url)  # in the file, never synced yet
    cfg.write_text(json.dumps(doc))

    states = {pid: r["state"] for pid, r in rows(env=env).items()}
    assert states == {"good": "ok", "flaky": "failing", "dead": "never reached",
                      "off": "disabled", "later": "never reached"}
    flaky_row = rows(env=env)["flaky"]
    assert flaky_row["failures"] == 2 and flaky_row["failing_since"] > flaky_row["last_success"]

    text = run("status", env=env).stdout
    assert "failing (2 times)" in text and "failing since " in text
    assert "3 tries failed since" in text and "not synced yet" in text
    line = next(ln for ln in text.splitlines() if ln.lstrip().startswith("off "))
    assert "disabled" in line


def test_status_has_one_header_row_for_all_targets(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    a = write_json(tmp_path / "a.json", {"provider": {"one": block(fake.base_url)}})
    b = write_json(tmp_path / "b.json", {"provider": {"two": block(fake.base_url)}})
    assert run("once", "--no-notify", "--config", str(a), "--config", str(b)).returncode == 0
    lines = run("status").stdout.splitlines()
    header = [ln for ln in lines if ln.split()[:2] == ["provider", "state"]]
    assert header == [lines[0]]
    assert lines[0].split() == ["provider", "state", "last", "success", "served", "managed",
                                "deleted"]
    assert all(len(ln) <= 80 for ln in lines)


def test_prune_forgets_gone_targets_and_providers_and_keeps_what_cannot_be_read(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    gone = write_json(tmp_path / "gone.json", {"provider": {"p": block(fake.base_url)}})
    kept = write_json(tmp_path / "kept.json", {"provider": {"stay": block(fake.base_url),
                                                            "drop": block(fake.base_url)}})
    broken = write_json(tmp_path / "broken.json", {"provider": {"q": block(fake.base_url)}})
    for cfg in (gone, kept, broken):
        assert run("once", "--no-notify", "--config", str(cfg)).returncode == 0
    gone.unlink()
    doc = json.loads(kept.read_text())
    del doc["provider"]["drop"]
    kept.write_text(json.dumps(doc))
    broken.write_text("{ oops")

    before = run("status").stdout
    assert "no longer in the file (`syncd status --prune` forgets it)" in before

    out = run("status", "--prune", "--json")
    assert out.returncode == 0, out.stderr
    doc = one_json(out)
    assert {(p["target"], p["provider"]) for p in doc["pruned"]} == {
        (target_key(gone), None), (target_key(kept), "drop")}
    assert {(r["target"], r["provider"]) for r in doc["providers"]} == {
        (target_key(kept), "stay"), (target_key(broken), "q")}
    again = run("status", "--prune")
    assert again.returncode == 0 and again.stdout.startswith("nothing to forget")
