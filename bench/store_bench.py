"""Benchmark: a pulled model reaches OpenCode's config through Ollama's model store; idle cost of watching.

    .venv/bin/python bench/store_bench.py [--pulls 20] [--seconds 60] [--quick] [--json]

(a) A fake Ollama on 127.0.0.1 and a temp `OLLAMA_MODELS` whose manifests folder the daemon watches.
    A pull is what `ollama pull` looks like from outside: the model joins the server's list and its
    manifest is written (last). A removal: it leaves the list and its manifest is deleted. Latency
    runs from the manifest's write (or unlink) to the daemon's "provider synced" line that added (or
    removed) it, which it logs after the config was written. The daemons run with
    `local_interval: 1h`, so no scheduled poll can help: every change is the store's doing.
    Removals with grace 1 and grace 2 (the second answer comes from the confirming run).
    Also: pulls with no readable store, noticed by the 5 s list poll instead.
(b) An idle daemon (default 60 s interval) watching that store: CPU share and memory over a window;
    and the same with no readable store, where the list is polled every 5 s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from daemon_bench import Daemon, home_env, proc_cpu_seconds, proc_status_kb, write_target  # noqa: E402

from syncd.daemon.stores import FAST_POLL  # noqa: E402
from tests.fakes import FakeProvider  # noqa: E402

PULL_TARGET_S = 2.0
CPU_TARGET_PCT = 0.5
RSS_TARGET_MB = 60.0


def manifest(store: Path, name: str) -> Path:
    return store / "manifests" / "registry.ollama.ai" / "library" / name / "latest"


def prune(path: Path) -> None:
    """What `ollama rm` does (manifest/manifest.go: Remove, then PruneDirectory): the manifest goes,
    then every folder it leaves empty."""
    path.unlink()
    folder = path.parent
    while folder.name != "manifests" and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def synced_with(field: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == "provider synced" and line.get(field, 0) >= 1


class Setup:
    """A throwaway home with a target for one fake Ollama, a settings file, and a model store."""

    def __init__(self, root: Path, name: str, grace: int, interval: str, store: bool) -> None:
        self.fake = FakeProvider("ollama")
        self.home = root / name
        self.store = self.home / "ollama-models"
        if store:
            (self.store / "manifests").mkdir(parents=True)
        self.target = self.home / "oc" / "opencode.jsonc"
        write_target(self.target, {"ollama": self.fake})
        settings = self.home / "settings.json"
        settings.write_text(json.dumps({"configs": [str(self.target)], "detect": False, "grace": grace,
                                        "local_interval": interval, "notify": {"desktop": False}}))
        env = home_env(self.home, settings)
        env["OLLAMA_MODELS"] = str(self.store)
        self.daemon = Daemon(env)
        self.daemon.wait(lambda line: line.get("event") == "daemon ready")
        if store:
            self.daemon.wait(lambda line: line.get("event") == "model stores watched"
                             and str(self.store / "manifests") in line.get("folders", []))
        else:  # the poll's first look at the list, so that what follows is a change to it
            end = time.monotonic() + 30
            while "/v1/models" not in self.fake.paths() and time.monotonic() < end:
                time.sleep(0.02)

    def pull(self, name: str, write_manifest: bool) -> float:
        """Seconds from the manifest's write (or the list's change) to the run that added it."""
        self.fake.models.append({"id": f"{name}:latest", "context": 32768, "tools": True})
        at = self.daemon.mark()
        started = time.monotonic()
        if write_manifest:
            path = manifest(self.store, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"schemaVersion": 2, "layers": []}')
        seen = self.daemon.wait(synced_with("added"), since=at, timeout=60)
        return seen - started

    def remove(self, name: str) -> float:
        self.fake.models[:] = [m for m in self.fake.models if m["id"] != f"{name}:latest"]
        at = self.daemon.mark()
        started = time.monotonic()
        prune(manifest(self.store, name))
        seen = self.daemon.wait(synced_with("removed"), since=at, timeout=60)
        return seen - started

    def close(self) -> None:
        self.daemon.stop()
        self.fake.close()


def pause(spread: float = 0.3) -> None:
    """Separate changes, at random moments as a person makes them: a fixed spacing would lock onto
    the poll's period (or the watcher's step) and measure one phase of it only."""
    time.sleep(random.uniform(0.3, 0.3 + spread))


def latencies(root: Path, pulls: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"pull": [], "remove, grace 1": [], "remove, grace 2": [],
                                   "pull, no store (list poll)": []}
    for grace in (1, 2):
        s = Setup(root, f"g{grace}", grace, "1h", store=True)
        try:
            for i in range(pulls):
                out["pull"].append(s.pull(f"bench{i}", write_manifest=True))
                pause()
            for i in range(pulls):
                out[f"remove, grace {grace}"].append(s.remove(f"bench{i}"))
                pause()
        finally:
            s.close()
    s = Setup(root, "poll", 1, "1h", store=False)
    try:
        for i in range(max(3, pulls // 2)):
            out["pull, no store (list poll)"].append(s.pull(f"polled{i}", write_manifest=False))
            pause(spread=5.0)
    finally:
        s.close()
    return out


def idle(root: Path, seconds: float, store: bool) -> dict[str, float]:
    s = Setup(root, f"idle-{store}", 2, "60s", store=store)
    try:
        time.sleep(2.0)  # start-up work out of the window
        pid = s.daemon.proc.pid
        cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
        return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "rss_mb": proc_status_kb(pid, "VmRSS") / 1024,
                "seconds": t1 - t0}
    finally:
        s.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pulls", type=int, default=20, help="pulls and removals per daemon (default 20)")
    ap.add_argument("--seconds", type=float, default=60.0, help="idle window (default 60)")
    ap.add_argument("--quick", action="store_true", help="3 pulls, 5 s idle (smoke)")
    ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit}")
    args = ap.parse_args()
    pulls, seconds = (3, 5.0) if args.quick else (args.pulls, args.seconds)
    root = Path(tempfile.mkdtemp(prefix="syncd-store-bench-"))
    try:
        lat = latencies(root, pulls)
        watched = idle(root, seconds, store=True)
        polled = idle(root, seconds, store=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows: list[dict[str, Any]] = []
    for name, values in lat.items():
        med = statistics.median(values)
        target = f"<= {PULL_TARGET_S:g} s" if name == "pull" else ""
        row = {"figure": f"store -> config, {name}: median", "target": target,
               "measured": round(med, 3), "unit": "s", "ratio": None,
               "note": f"{len(values)} runs; p95 {p95(values):.2f} s; max {max(values):.2f} s"}
        if target:
            row["verdict"] = "met" if med <= PULL_TARGET_S else "missed"
        rows.append(row)
        rows.append({"figure": f"store -> config, {name}: p95", "target": "",
                     "measured": round(p95(values), 3), "unit": "s", "ratio": None})
    for label, use in (("store watched", watched), (f"no store, list polled every {FAST_POLL:g} s", polled)):
        rows.append({"figure": f"idle CPU, {label}, {use['seconds']:.0f} s",
                     "target": f"<= {CPU_TARGET_PCT:g}", "measured": round(use["cpu_pct"], 3),
                     "unit": "% of a core", "ratio": None,
                     "verdict": "met" if use["cpu_pct"] <= CPU_TARGET_PCT else "missed"})
        rows.append({"figure": f"idle RSS, {label}", "target": f"<= {RSS_TARGET_MB:g}",
                     "measured": round(use["rss_mb"], 1), "unit": "MB", "ratio": None,
                     "verdict": "met" if use["rss_mb"] <= RSS_TARGET_MB else "missed"})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['figure']:<58} {r['measured']:>9} {r['unit']:<11} target {r['target'] or '-':<8} "
                  f"{r.get('note', '')}")
    ok = all(r.get("verdict", "met") == "met" for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
