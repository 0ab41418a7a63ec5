"""Soak: `syncd run` for minutes against 20 churning servers and an editing user; prints issue 18's figures.

    .venv/bin/python bench/daemon_soak.py --minutes 10 [--seed 1] [--json] [--keep]

20 fake servers (tests/fakes.py) on 127.0.0.1, one serving 3,000 models; each adds a model (or
now and then removes one) every 2-6 s on a seeded schedule, and five fail now and then (HTTP 500,
a body cut short, a hang). A list grows by 10 models at most, then removals keep up with
additions, and the editor keeps at most 25 entries of its own: the data stays the same size, so
RSS and the log rate measure the daemon, not a growing config. One opencode.jsonc with comments
names them all; syncd runs with `interval` and `local_interval` 1 s, grace as default, its JSON
log (-v) in a file. A scripted editor changes the config every 1-3 s (add an entry of its own,
change an option or a name, delete an entry of its own or one syncd wrote) saving in place, by
temp file + rename, or vim-style. The daemon is seen only through the CLI, its files, its log
and /proc.

Figures (targets from issue 18):
  lost edits             before each edit and once after the daemon stopped, every earlier edit
                         is checked (entries present, options as last set, deleted IDs absent);
                         an edit found undone counts once
  tombstones not made    tombstoned IDs in syncd's state file the editor never deleted
  lock-contention        log lines saying "another syncd is writing" (one daemon runs)
  target invalid         error-level "target invalid" lines, less those a half-saved file
                         explains (a parse error just after an in-place or vim-style save, a
                         missing or "read-only" file just after a vim-style save)
  CPU                    the daemon's utime+stime over the run after a warm-up, % of one core
  achieved syncs         "provider synced" lines (any level) with status ok of the 15 healthy
                         providers, over 15 x window / interval; the note adds how often their
                         servers were asked for their lists
  upstream -> file       from a server's addition to the ID's first appearance in the file (a
                         20 ms stat poll), healthy servers; median and p95
  RSS slope              least squares over VmRSS sampled every 2 s, last two thirds of the run
  log bytes per minute   bytes of the lines at info and above (what the daemon writes without
                         -v), by their timestamps, in the first and in the last third
  SIGTERM -> exit        SIGTERM while a fetch hangs and the 3,000-model provider's sync is
                         running; seconds until the process is gone
Diagnostics (log composition, where lock errors and stray tombstones come from) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import soak_kit as kit  # noqa: E402
from _common import Row, emit, isolated_env, machine_line  # noqa: E402

from tests.fakes import FakeProvider  # noqa: E402

INTERVAL = 1.0  # seconds, `interval` and `local_interval`
BIG = 3000
FLAKY = ("ollama-3", "srv-16", "srv-17", "srv-18", "srv-19")
COMMENTS = ("// OpenCode config of the soak bench", "/* 20 custom providers on 127.0.0.1", "// hand-tuned:")


def make_servers() -> list[kit.Server]:
    """`gateway` serves 3,000 models; `ollama-1..3` speak Ollama; `srv-04..19` OpenAI."""
    servers = []
    pids = ["gateway", "ollama-1", "ollama-2", "ollama-3", *(f"srv-{i:02d}" for i in range(4, 20))]
    for pid in pids:
        kind = "ollama" if pid.startswith("ollama") else "openai"
        if pid == "gateway":
            ids = [f"gw/family-{i % 40:02d}/model-{i:04d}" for i in range(BIG)]
        elif kind == "ollama":
            ids = [f"{pid}-base-{i:02d}:8b" for i in range(6)]
        else:
            ids = [f"{pid}/base-{i:02d}" for i in range(8)]
        fake = FakeProvider(kind, [kit.model_item(kind, m) for m in ids])
        # syncd closing a connection mid-answer (a timeout, a hang) is expected: no traceback on stderr
        fake._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        servers.append(kit.Server(pid, fake, pid in FLAKY, ids))
    return servers


def write_config(path: Path, servers: list[kit.Server]) -> None:
    blocks = []
    for s in servers:
        tuned = ('\n        // hand-tuned: a model of my own\n        "my-own-model": { "name": "Mine" },'
                 if s.pid in ("gateway", "srv-04") else "")
        blocks.append(
            f'    // {s.pid}{" (fails now and then)" if s.flaky else ""}\n'
            f'    "{s.pid}": {{\n'
            f'      "npm": "@ai-sdk/openai-compatible",\n'
            f'      "name": "{s.pid.title()}",\n'
            f'      "options": {{ "baseURL": "{s.fake.base_url}", "timeout": 300000 }},\n'
            f'      "models": {{{tuned}\n      }},\n'
            f'    }}')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'{COMMENTS[0]}\n{{\n  "$schema": "https://opencode.ai/config.json",\n'
        f'  {COMMENTS[1]} */\n  "provider": {{\n' + ",\n".join(blocks) + ",\n  },\n}\n")


def rss_by_minute(samples: list[kit.Sample], t0: float) -> str:
    """The mean RSS of each minute of the run, in MB: where a slope comes from (warm-up or creep)."""
    minutes: dict[int, list[int]] = {}
    for s in samples:
        minutes.setdefault(int((s.mono - t0) // 60), []).append(s.rss_kb)
    return " ".join(f"{sum(kb) / len(kb) / 1024:.1f}" for _, kb in sorted(minutes.items()))


def start_daemon(root: Path, config: Path, log: Path) -> subprocess.Popen[bytes]:
    settings = root / "syncd.json5"
    settings.write_text(json.dumps({"configs": [str(config)], "detect": False, "interval": "1s",
                                    "local_interval": "1s", "notify": {"desktop": False}}))
    env = isolated_env(root)
    env.update(SYNCD_DETECT_PORTS="0,0,0", OLLAMA_MODELS=str(root / "no-ollama-store"))
    with open(log, "wb") as err:
        # -v: a sync that changed nothing is a debug line in a quiet daemon, and every sync is counted
        return subprocess.Popen([sys.executable, "-m", "syncd", "run", "--log-format", "json", "-v"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=env, cwd=root)


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"syncd run exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if '"event": "daemon ready"' in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise SystemExit(f"syncd run not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def sigterm_in_flight(proc: subprocess.Popen[bytes], upstreams: kit.Upstreams) -> tuple[float, str]:
    """SIGTERM while a fetch hangs (a flaky server told to hang) and the 3,000-model provider's
    sync is running (a request just reached its server); seconds until the daemon exited."""
    hung = next(s for s in upstreams.servers if s.flaky)
    big = upstreams.servers[0]
    hung.fake.fault = "hang"
    n = upstreams.tally()[0][hung.pid]
    got_hang = kit.wait_for(lambda: upstreams.tally()[0][hung.pid] > n, 15.0)
    n = upstreams.tally()[0][big.pid]
    got_big = kit.wait_for(lambda: upstreams.tally()[0][big.pid] > n, 15.0)
    time.sleep(0.05)  # its answer is on the way; the plan and the write follow
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    took = time.monotonic() - started
    what = [f"{hung.pid} hanging" if got_hang else f"{hung.pid} not asked",
            f"{big.pid} fetch sent" if got_big else f"{big.pid} not asked"]
    return took, ", ".join(what)


def figures(a: dict[str, Any]) -> list[Row]:
    def row(figure: str, target: str, measured: Any, unit: str, ok: bool | None, note: str = "") -> Row:
        verdict = "" if ok is None else "met" if ok else "missed"
        return Row(figure, target, measured, unit, verdict=verdict, note=note)

    return [
        row("lost edits", "0", len(a["lost"]), "", not a["lost"], a["edits_note"]),
        row("tombstones not made by the user", "0", len(a["stray"]), "", not a["stray"],
            f"{a['tomb_total']} tombstones in all; the editor deleted {a['deleted']} IDs"),
        row("lock-contention errors (log lines: another syncd is writing)", "0", a["lock_lines"], "",
            a["lock_lines"] == 0, a["lock_note"]),
        row("target invalid, error level, not from a half-saved file", "0", a["invalid"], "",
            a["invalid"] == 0, a["invalid_note"]),
        row("CPU of the daemon", "<= 35", round(a["cpu_pct"], 1), "% of a core", a["cpu_pct"] <= 35,
            f"over {a['window']:.0f} s after a {a['warm']:.0f} s warm-up"),
        row("achieved / scheduled syncs, healthy providers", ">= 90", round(a["sync_pct"], 1), "%",
            a["sync_pct"] >= 90, a["sync_note"]),
        row("upstream -> file, median", "<= 2", round(a["lat_med"], 2), "s", a["lat_med"] <= 2,
            a["lat_note"]),
        row("upstream -> file, p95", "—", round(a["lat_p95"], 2), "s", None),
        row("RSS slope, last two thirds", "flat (<= 0.05)", round(a["rss_slope"], 3), "MB/min",
            abs(a["rss_slope"]) <= 0.05, a["rss_note"]),
        row("RSS first / last / peak", "—", round(a["rss_last"], 1), "MB", None, a["rss_note2"]),
        row("log bytes per minute, first third", "—", round(a["log_first"] / 1e3, 1), "KB/min", None),
        row("log bytes per minute, last third", "flat (<= 1.2x the first)", round(a["log_last"] / 1e3, 1),
            "KB/min", a["log_last"] <= 1.2 * max(a["log_first"], 1.0), a["log_note"]),
        row("SIGTERM -> exit, syncs in flight", "<= 2", round(a["stop_s"], 2), "s", a["stop_s"] <= 2,
            a["stop_note"]),
    ]


@dataclass
class Soak:
    """What one run leaves behind for the figures."""

    root: Path
    config: Path
    log: Path
    servers: list[kit.Server]
    duration: float = 0.0
    warm: float = 0.0
    t0: float = 0.0  # monotonic, when churn and edits began (the daemon ready)
    t0_wall: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)  # wall clock: after the warm-up, to the end
    cpu: tuple[float, float] = (0.0, 0.0)  # the daemon's CPU seconds at the window's ends
    fetches: tuple[Counter[str], Counter[str]] = (Counter(), Counter())  # list GETs at the window's ends
    hwm_mb: float = 0.0
    bench_cpu_s: float = 0.0
    stop_s: float = 0.0
    in_flight: str = ""
    final: Any = None  # the config's data after the daemon stopped (None: unreadable)
    final_text: str = ""
    parts: dict[str, Any] = field(default_factory=dict)


def run(soak: Soak, minutes: float, seed: int) -> None:
    """Start everything, let it run `minutes`, stop the daemon with syncs in flight."""
    rng = random.Random(seed)
    write_config(soak.config, soak.servers)
    proc = start_daemon(soak.root, soak.config, soak.log)
    try:
        wait_ready(proc, soak.log)
        watcher = kit.Watcher(soak.config)
        upstreams = kit.Upstreams(soak.servers, random.Random(rng.random()), watcher.expect, watcher.seen)
        editor = kit.Editor(soak.config, soak.servers, random.Random(rng.random()))
        sampler = kit.Sampler(proc.pid)
        soak.parts = {"watcher": watcher, "upstreams": upstreams, "editor": editor, "sampler": sampler}
        self_cpu0 = time.process_time()
        soak.t0, soak.t0_wall = time.monotonic(), time.time()
        soak.duration = minutes * 60.0
        soak.warm = min(10.0, soak.duration / 10)
        for part in (sampler, watcher, upstreams, editor):
            part.start()
        time.sleep(soak.warm)
        cpu0, w0, fetches0 = kit.proc_cpu_seconds(proc.pid), time.time(), upstreams.tally()[1]
        time.sleep(max(0.0, soak.t0 + soak.duration - time.monotonic()))
        editor.stop()
        soak.cpu, soak.window = (cpu0, kit.proc_cpu_seconds(proc.pid)), (w0, time.time())
        soak.fetches = (fetches0, upstreams.tally()[1])
        soak.hwm_mb = kit.proc_status_kb(proc.pid, "VmHWM") / 1024
        sampler.stop()
        soak.bench_cpu_s = time.process_time() - self_cpu0
        soak.stop_s, soak.in_flight = sigterm_in_flight(proc, upstreams)
        upstreams.stop()
        watcher.stop()
        soak.final = editor.check()  # once more, the daemon gone
        soak.final_text = soak.config.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def measure(soak: Soak) -> dict[str, Any]:
    """Every figure and its note, from what the run recorded, the state file and the log."""
    editor: kit.Editor = soak.parts["editor"]
    watcher: kit.Watcher = soak.parts["watcher"]
    upstreams: kit.Upstreams = soak.parts["upstreams"]
    samples: list[kit.Sample] = soak.parts["sampler"].samples
    healthy = {s.pid for s in soak.servers if not s.flaky}
    a: dict[str, Any] = {"root": str(soak.root), "stop_s": soak.stop_s, "warm": soak.warm}
    w0, w1 = soak.window
    a["window"] = w1 - w0
    a["cpu_pct"] = 100.0 * (soak.cpu[1] - soak.cpu[0]) / (w1 - w0)
    a["bench_cpu_pct"] = 100.0 * soak.bench_cpu_s / soak.duration

    a["lost"] = editor.lost
    styles = Counter(e.style for e in editor.edits)
    kinds = Counter(e.kind for e in editor.edits)
    a["edits_note"] = (f"{len(editor.edits)} edits ({', '.join(f'{n} {k}' for k, n in kinds.items())}; "
                       f"{', '.join(f'{n} {k}' for k, n in styles.items())}); "
                       f"{sum(1 for e in editor.edits if e.retries)} re-done because the file changed "
                       f"between read and save; {editor.skipped} given up; unreadable checks "
                       f"{editor.unreadable}; final file parses: {soak.final is not None}; comments kept "
                       f"{sum(c in soak.final_text for c in COMMENTS)}/{len(COMMENTS)}")
    a["edits"], a["editor_errors"], a["deleted"] = editor.edits, editor.errors, len(editor.deleted)

    a["stray"], a["tomb_total"] = kit.tombstones_not_made(soak.root / "state" / "state.json", soak.config,
                                                          editor.deleted)
    kit.count_log(a, soak.log, healthy, editor.edits, w0, w1, INTERVAL)
    a["stray_why"] = [kit.explain_tombstone(pid, mid, upstreams.changes, a["removal_lines"], soak.t0_wall)
                      for pid, mid in a["stray"]]

    lat = [sec for c, sec in watcher.appeared.values() if c.pid in healthy]
    flaky_lat = [sec for c, sec in watcher.appeared.values() if c.pid not in healthy]
    adds = sum(1 for c in upstreams.changes if c.what == "add")
    a["lat_med"], a["lat_p95"] = kit.percentile(lat, 0.5), kit.percentile(lat, 0.95)
    a["lat_note"] = (f"{len(lat)} additions on healthy servers reached the file; "
                     f"{len(watcher.waiting)} of {adds} in all still awaited at the end; flaky servers' "
                     f"median {kit.percentile(flaky_lat, 0.5):.2f} s; removals upstream: "
                     f"{sum(1 for c in upstreams.changes if c.what == 'remove')}")

    third = soak.duration / 3
    tail = [(s.mono - soak.t0, s.rss_kb / 1024) for s in samples if s.mono - soak.t0 >= third]
    a["rss_slope"] = kit.slope_per_minute(tail)
    a["rss_first"], a["rss_last"] = samples[0].rss_kb / 1024, samples[-1].rss_kb / 1024
    a["rss_note"] = f"{len(tail)} samples, one every 2 s"
    a["rss_note2"] = (f"first {a['rss_first']:.1f} MB, last {a['rss_last']:.1f} MB, peak sampled "
                      f"{max(s.rss_kb for s in samples) / 1024:.1f} MB, VmHWM {soak.hwm_mb:.1f} MB; "
                      f"mean of each minute: {rss_by_minute(samples, soak.t0)}")
    lines, end = a.pop("parsed_lines"), soak.window[1]
    a["log_first"] = kit.log_rate(lines, soak.t0_wall, soak.t0_wall + third)
    a["log_last"] = kit.log_rate(lines, end - third, end)
    a["log_note"] = (f"{a['log_lines']} lines at info and above; the file also holds "
                     f"{a['debug_bytes'] / 1e6:.2f} MB of debug lines (-v)")
    a["stop_note"] = f"in flight: {soak.in_flight}; the daemon said: waiting for {a['in_flight_said']}"
    gets = sum(soak.fetches[1][p] - soak.fetches[0][p] for p in healthy)
    a["sync_note"] += (f"; the healthy servers' model lists were fetched {gets} times in the window "
                       f"({100 * gets / (len(healthy) * a['window'] / INTERVAL):.0f} % of scheduled)")
    return a


def keep_record(soak: Soak) -> None:
    """bench-record.jsonl beside the log: every edit and every server change, for a post-mortem."""
    with open(soak.root / "bench-record.jsonl", "w") as f:
        for e in soak.parts["editor"].edits:
            f.write(json.dumps({"edit": e.n, "wall": e.wall, "style": e.style, "kind": e.kind,
                                "provider": e.provider, "what": e.what, "value": e.value,
                                "retries": e.retries, "lost_after": e.lost_after}) + "\n")
        for c in soak.parts["upstreams"].changes:
            f.write(json.dumps({"server": c.pid, "wall": c.wall, "change": c.what, "model": c.model}) + "\n")


def diagnose(a: dict[str, Any], minutes: float, seed: int) -> str:
    """What is worth knowing beside the figures (printed on stderr, so --json stays one document)."""
    out = [f"Machine: {machine_line()}; load average {os.getloadavg()[0]:.2f}",
           f"Command: .venv/bin/python bench/daemon_soak.py --minutes {minutes:g} --seed {seed}",
           f"The bench process itself used {a['bench_cpu_pct']:.0f} % of a core (servers, editor, watcher).",
           f"'a save undid syncd's last write(s)' lines: {a['undid']}; models logged as deleted by hand: "
           f"{a['by_hand']}", "Log lines by bytes (level: event):"]
    out += [f"  {size / 1e3:9.1f} KB {n:7d} lines  {shape}" for shape, n, size in a["composition"]]
    if a["undid_after"]:
        out.append("Each 'a save undid' line, and the editor's save before it: "
                   + "; ".join(a["undid_after"]))
    if a["stray_why"]:
        out.append("Tombstones syncd made on its own (times from the start of the run):")
        out += [f"  {why}" for why in a["stray_why"]]
    if a["lost"]:
        out.append("Lost edits (n, style, kind, provider, what, seconds from save to the check):")
        out += [f"  #{e.n} {e.style} {e.kind} {e.provider} {e.what} {e.lost_after:.1f}" for e in a["lost"]]
    if a["editor_errors"]:
        out.append(f"Editor errors: {a['editor_errors'][:5]}")
    if a.get("kept"):
        out.append(f"Kept: {a['root']} (syncd.log, state/, .config/opencode/opencode.jsonc, "
                   "bench-record.jsonl)")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long (default 10; 0.5 works)")
    ap.add_argument("--seed", type=int, default=1, help="seed of every schedule (default 1)")
    ap.add_argument("--quick", action="store_true", help="a 15-second smoke run")
    ap.add_argument("--keep", action="store_true", help="keep the temp home (log, state, config)")
    ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit, ratio}")
    args = ap.parse_args()
    minutes = 0.25 if args.quick else args.minutes
    root = Path(tempfile.mkdtemp(prefix="syncd-soak-"))
    soak = Soak(root, root / ".config" / "opencode" / "opencode.jsonc", root / "syncd.log", make_servers())
    try:
        run(soak, minutes, args.seed)
        a = measure(soak)
        if args.keep:
            keep_record(soak)
    finally:
        for s in soak.servers:
            s.fake.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    a["kept"] = args.keep
    rows = figures(a)
    emit(rows, args.json, title=f"daemon soak, {minutes:g} min, seed {args.seed}")
    print(diagnose(a, minutes, args.seed), file=sys.stderr)
    return 0 if all(r.verdict in ("", "met") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
