"""Scale: 200 providers and a gateway serving 20,000 models; `syncd once` finishes, bounded, minimal patch."""

from __future__ import annotations

import difflib
import json
import resource
import time
from pathlib import Path

import pytest
from fakes import FakeProvider
from reliability_kit import once_cmd, syncd_cli, write_settings

from syncd import jsonc

PROVIDERS = 200
GATEWAY_MODELS = 20_000
RSS_CAP_MB = 1024  # a generous bound: what matters is the number printed, and that it is finite


def gateway_models(n: int) -> list[dict[str, object]]:
    return [{"id": f"vendor{i % 50}/model-{i:05d}", "context": 131072, "output": 8192}
            for i in range(n)]


@pytest.mark.slow
def test_200_providers_and_a_20000_model_gateway(tmp_path: Path) -> None:
    shared = [FakeProvider("openai"), FakeProvider("lmstudio")]
    gateway = FakeProvider("openai", gateway_models(GATEWAY_MODELS))
    try:
        # generous timeouts: this test is about size, and a busy 2-core box is slow to serve 20k
        slow_ok = "timeouts: { connect: '10s', read: '60s', total: '120s' }"
        settings = write_settings(tmp_path, f"max_models: 30000, {slow_ok}")
        env = {"SYNCD_CONFIG": str(settings)}
        blocks = {f"p{i:03d}": shared[i % 2] for i in range(PROVIDERS - 1)}
        blocks["gateway"] = gateway
        target = tmp_path / "opencode.jsonc"
        target.write_text("// many providers\n" + json.dumps({"provider": {
            pid: {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": f.base_url},
                  "models": {}} for pid, f in blocks.items()}}, indent=2) + "\n")

        started = time.monotonic()
        out = syncd_cli(*once_cmd(target, "--json"), env=env, timeout=300)
        first_s = time.monotonic() - started
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        doc = json.loads(out.stdout)
        errors = {p["id"]: p["error"] for p in doc["targets"][0]["providers"] if p["error"]}
        assert out.returncode == 0 and not errors, (errors, out.stderr[-2000:])
        by_id = {p["id"]: p for p in doc["targets"][0]["providers"]}
        assert len(by_id) == PROVIDERS and all(p["status"] == "ok" for p in by_id.values())
        assert by_id["gateway"]["served"] == GATEWAY_MODELS
        data = jsonc.parse(target.read_text())
        assert len(data["provider"]["gateway"]["models"]) == GATEWAY_MODELS
        assert rss_mb < RSS_CAP_MB

        gateway.models.append({"id": "vendor7/brand-new", "context": 8192, "output": 1024})
        before = target.read_text().splitlines(keepends=True)
        started = time.monotonic()
        out = syncd_cli(*once_cmd(target), env=env, timeout=300)
        second_s = time.monotonic() - started
        assert out.returncode == 0, out.stderr[-2000:]
        after = target.read_text().splitlines(keepends=True)
        diff = [ln for ln in difflib.unified_diff(before, after, n=0) if ln[:1] in "+-"
                and not ln.startswith(("+++", "---"))]
        removed = [ln for ln in diff if ln.startswith("-")]
        added = [ln for ln in diff if ln.startswith("+")]
        assert len(removed) <= 1, removed  # at most the line that gains a comma
        assert any("vendor7/brand-new" in ln for ln in added)
        assert len(added) <= 16, added
        print(f"scale: {PROVIDERS} providers + {GATEWAY_MODELS} models: first once {first_s:.1f} s, "
              f"second {second_s:.1f} s, peak RSS {rss_mb:.0f} MB, "
              f"file {target.stat().st_size / 1e6:.1f} MB; patch {len(removed)}-/{len(added)}+ lines")
    finally:
        for fake in (*shared, gateway):
            fake.close()
