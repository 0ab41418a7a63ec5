"""Parts of bench/daemon_soak.py: churning fake servers, a scripted editor, a watcher, a sampler, log counts.

Everything here runs in the bench process and talks to the daemon only through files: the
config it edits and watches, the state file it reads at the end, the log and /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd import jsonc
from syncd.errors import PatchError
from tests.fakes import FakeProvider

TICKS = os.sysconf("SC_CLK_TCK")
FAULTS = ("500", "truncated", "hang")  # the fakes' HTTP 500, body cut short + close, accept and hang
GROWTH = 10  # a server's list grows by this many models at most, then removals keep up with additions
OWN_MAX = 25  # entries of its own the editor keeps at most (then it deletes one instead of adding)
LOCK_TEXT = "another syncd is writing"


# --- the servers --------------------------------------------------------------------------------


@dataclass
class Server:
    pid: str  # the provider id in the config
    fake: FakeProvider
    flaky: bool
    base: list[str]  # the IDs served at the start


@dataclass(frozen=True)
class Change:
    pid: str
    what: str  # "add" | "remove" | "fault <kind>" | "fault cleared"
    model: str
    wall: float  # time.time()
    mono: float  # time.monotonic()


class Upstreams:
    """Changes each server's model list every few seconds and breaks the flaky ones now and then.

    One thread, one seeded schedule. A change replaces `fake.models` with a new list (one
    assignment: a request being served sees the old list or the new). Only models already seen
    in the config (or served from the start) are removed, so a removal never hides an addition
    the watcher is waiting for.
    """

    def __init__(self, servers: Sequence[Server], rng: random.Random, on_add: Callable[[Change], None],
                 seen: Callable[[str], bool], every: tuple[float, float] = (2.0, 6.0)) -> None:
        self.servers = list(servers)
        self.rng = rng
        self.on_add = on_add
        self.seen = seen
        self.every = every
        self.changes: list[Change] = []
        self._stop = threading.Event()
        self._counter = 0
        self._tally_lock = threading.Lock()
        self._requests: Counter[str] = Counter()  # every request each server received
        self._list_gets: Counter[str] = Counter()  # the GETs of its model list (one per sync)
        self._thread = threading.Thread(target=self._run, name="soak-upstreams", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for s in self.servers:
            s.fake.fault = None

    def _run(self) -> None:
        now = time.monotonic()
        due: dict[tuple[str, str], float] = {}
        for s in self.servers:
            due[(s.pid, "list")] = now + self.rng.uniform(*self.every)
            if s.flaky:
                due[(s.pid, "fault")] = now + self.rng.uniform(3.0, 15.0)
        by_pid = {s.pid: s for s in self.servers}
        while not self._stop.is_set():
            key = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[key] - time.monotonic())):
                return
            server = by_pid[key[0]]
            if key[1] == "list":
                self._change_list(server)
                due[key] = time.monotonic() + self.rng.uniform(*self.every)
            elif server.fake.fault is None:  # fail for 2-8 s
                server.fake.fault = self.rng.choice(FAULTS)
                self._note(server.pid, f"fault {server.fake.fault}", "")
                due[key] = time.monotonic() + self.rng.uniform(2.0, 8.0)
            else:  # healthy again for 8-25 s
                server.fake.fault = None
                self._note(server.pid, "fault cleared", "")
                due[key] = time.monotonic() + self.rng.uniform(8.0, 25.0)
            self.tally()

    def tally(self) -> tuple[Counter[str], Counter[str]]:
        """(requests, model-list GETs) per server so far. The fakes keep every request they
        receive; they are counted here and dropped, so a long run holds none of them."""
        with self._tally_lock:
            for s in self.servers:
                got = s.fake.requests[:]  # handlers append meanwhile: count these, drop these
                del s.fake.requests[:len(got)]
                self._requests[s.pid] += len(got)
                self._list_gets[s.pid] += sum(1 for r in got if r.method == "GET"
                                              and r.path.split("?")[0] == list_path(s.fake))
            return Counter(self._requests), Counter(self._list_gets)

    def _change_list(self, s: Server) -> None:
        """Mostly an addition; a removal now and then, and whenever the list is GROWTH models
        longer than at the start (so the data, and what it costs to hold, stays the same size)."""
        models = list(s.fake.models)
        removable = [m for m in models if m["id"] in s.base or self.seen(m["id"])]
        full = len(models) >= len(s.base) + GROWTH
        if not removable or (not full and self.rng.random() < 0.7):
            self._counter += 1
            mid = new_model_id(s, self._counter)
            models.append(model_item(s.fake.kind, mid))
            s.fake.models = models
            self.on_add(self._note(s.pid, "add", mid))
        else:
            gone = self.rng.choice(removable)["id"]
            s.fake.models = [m for m in models if m["id"] != gone]
            self._note(s.pid, "remove", gone)

    def _note(self, pid: str, what: str, model: str) -> Change:
        change = Change(pid, what, model, time.time(), time.monotonic())
        self.changes.append(change)
        return change


def list_path(fake: FakeProvider) -> str:
    """The path a sync fetches the list from (Ollama's /v1/models is what a store poll asks)."""
    return "/api/tags" if fake.kind == "ollama" else "/v1/models"


def model_item(kind: str, mid: str) -> dict[str, Any]:
    """A model as tests/fakes.py takes it (it fills in the rest of the upstream's own item)."""
    if kind == "ollama":
        return {"id": mid, "context": 32768, "num_ctx": 8192, "tools": True, "arch": "llama"}
    return {"id": mid}


def new_model_id(s: Server, n: int) -> str:
    return f"{s.pid}-new-{n:05d}:8b" if s.fake.kind == "ollama" else f"{s.pid}/new-{n:05d}"


# --- watching the config for what the servers added ---------------------------------------------


class Watcher:
    """Polls the config (stat every `step` s, the text only when it changed) for awaited model IDs."""

    def __init__(self, path: Path, step: float = 0.02) -> None:
        self.path = path
        self.step = step
        self.waiting: dict[str, Change] = {}
        self.appeared: dict[str, tuple[Change, float]] = {}  # id -> (its addition, seconds to the file)
        self.polls = 0
        self.reads = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def expect(self, change: Change) -> None:
        with self._lock:
            self.waiting[change.model] = change

    def seen(self, model: str) -> bool:
        return model in self.appeared

    def _run(self) -> None:
        last: tuple[int, int, int] | None = None
        while not self._stop.wait(self.step):
            self.polls += 1
            try:
                st = os.stat(self.path)
            except OSError:
                continue
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if sig == last:
                continue
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            now = time.monotonic()
            last = sig
            self.reads += 1
            with self._lock:
                found = [m for m in self.waiting if f'"{m}"' in text]
                for m in found:
                    change = self.waiting.pop(m)
                    self.appeared[m] = (change, now - change.mono)


# --- the scripted editor ------------------------------------------------------------------------

ABSENT = "<absent>"
_MISSING = object()


@dataclass
class Edit:
    n: int
    wall: float  # time.time() when the save began
    mono: float  # time.monotonic() when the save began
    style: str  # in-place | replace | vim
    kind: str  # add | option | rename | delete-own | delete-synced
    provider: str
    what: str  # the model ID or option edited
    path: tuple[str, ...]
    value: Any
    retries: int = 0  # the file changed between the editor's read and its save: edited again
    lost_after: float | None = None  # seconds from the save to the check that found it undone


def lookup(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def save_in_place(path: Path, data: bytes) -> None:
    """Like an editor writing through its own descriptor: open, truncate, write."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def save_replace(path: Path, data: bytes) -> None:
    """Temp file beside it, then rename over it (VS Code's atomic save, most tools)."""
    tmp = path.with_name(f".{path.name}.edit-{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_vim(path: Path, data: bytes) -> None:
    """vim with `backupcopy=no`: rename the file to `file~`, write a new file, delete the backup."""
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    with open(path, "wb") as f:
        f.write(data)
    os.unlink(backup)


SAVES: dict[str, Callable[[Path, bytes], None]] = {
    "in-place": save_in_place, "replace": save_replace, "vim": save_vim}


class Editor:
    """Edits the config every 1-3 s and checks, before each edit, that its earlier edits still hold.

    What it claims is a map path -> expected value (or ABSENT); a later edit of the same path
    replaces the claim, a deletion drops the claims under it. An edit found undone counts once.
    """

    def __init__(self, path: Path, servers: Sequence[Server], rng: random.Random,
                 every: tuple[float, float] = (1.0, 3.0)) -> None:
        self.path = path
        self.servers = {s.pid: s for s in servers}
        self.rng = rng
        self.every = every
        self.edits: list[Edit] = []
        self.claims: dict[tuple[str, ...], tuple[Any, Edit]] = {}
        self.own: dict[tuple[str, str], str] = {}  # (provider, id) -> name, entries it added and kept
        self.deleted: set[tuple[str, str]] = set()  # (provider, id) it deleted by hand
        self.lost: list[Edit] = []
        self.skipped = 0  # edits given up: the entry chosen had gone when the editor saved
        self.unreadable = 0  # checks that found the file missing or not JSONC (after retries)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-editor", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(*self.every)):
            try:
                data = self.check()
                if data is not None:
                    self.edit_once(data)
            except Exception as e:  # a bench bug must not silently stop the edits
                self.errors.append(f"{type(e).__name__}: {e}")

    def read(self) -> tuple[str, Any] | None:
        for _ in range(5):
            try:
                text = self.path.read_text(encoding="utf-8")
                return text, jsonc.parse(text)
            except (OSError, UnicodeDecodeError, jsonc.JsoncError):
                time.sleep(0.02)
        self.unreadable += 1
        return None

    def check(self) -> Any:
        """Every claim against the file now; returns the parsed data (None: unreadable)."""
        got = self.read()
        if got is None:
            return None
        data = got[1]
        now = time.monotonic()
        for path, (want, edit) in list(self.claims.items()):
            have = lookup(data, path)
            holds = have is _MISSING if want == ABSENT else have == want
            if not holds:
                del self.claims[path]
                if edit.lost_after is None:
                    edit.lost_after = now - edit.mono
                    self.lost.append(edit)
                if edit.kind == "add":
                    self.own.pop((edit.provider, edit.what), None)
        return data

    def edit_once(self, data: Any) -> None:
        kind = self.rng.choices(["add", "option", "delete"], [0.4, 0.35, 0.25])[0]
        if kind == "add" and len(self.own) >= OWN_MAX:
            kind = "delete"
        if kind == "option" and self.own and self.rng.random() < 0.5:
            kind = "rename"
        if kind == "delete":
            kind = "delete-own" if self.own and self.rng.random() < 0.65 else "delete-synced"
        pid, what, path, value = self._choose(kind, data)
        if not path:
            return
        style = self.rng.choice(list(SAVES))
        n = len(self.edits) + 1
        retries = 0
        text = self.path.read_text(encoding="utf-8")
        while True:
            try:
                new = jsonc.modify(text, path, jsonc.REMOVE if value == ABSENT else value)
            except PatchError:  # what it chose went meanwhile (syncd removed it): edit another time
                self.skipped += 1
                return
            again = self.path.read_text(encoding="utf-8")
            if again == text or retries >= 5:  # a careful editor reloads a file changed on disk
                break
            text, retries = again, retries + 1
        wall, mono = time.time(), time.monotonic()  # the save's start: a read of it may come at once
        SAVES[style](self.path, new.encode("utf-8"))
        edit = Edit(n, wall, mono, style, kind, pid, what, path, value, retries)
        self.edits.append(edit)
        for p in [p for p in self.claims if p[:len(path)] == path]:
            del self.claims[p]  # a later edit of the same thing, or a deletion of it
        if kind == "add":
            self.claims[(*path, "name")] = (value["name"], edit)
            self.own[(pid, what)] = value["name"]
        else:
            self.claims[path] = (value, edit)
        if kind == "rename":
            self.own[(pid, what)] = value
        elif kind.startswith("delete"):
            self.own.pop((pid, what), None)
            self.deleted.add((pid, what))

    def _choose(self, kind: str, data: Any) -> tuple[str, str, tuple[str, ...], Any]:
        n = len(self.edits) + 1
        if kind == "add":
            pid = self.rng.choice(list(self.servers))
            mid = f"my-finetune-{n:05d}"
            return pid, mid, ("provider", pid, "models", mid), {"name": f"My fine-tune {n}"}
        if kind == "option":
            pid = self.rng.choice(list(self.servers))
            return pid, "options.timeout", ("provider", pid, "options", "timeout"), 60000 + n
        if kind == "rename":
            pid, mid = self.rng.choice(sorted(self.own))
            return pid, mid, ("provider", pid, "models", mid, "name"), f"My fine-tune {n} (renamed)"
        if kind == "delete-own":
            pid, mid = self.rng.choice(sorted(self.own))
            return pid, mid, ("provider", pid, "models", mid), ABSENT
        # a model syncd wrote: one served from the start, so that syncd's latest writes did not
        # touch it (deleting exactly what syncd's last write added reads as a stale buffer)
        pids = list(self.servers)
        self.rng.shuffle(pids)
        for pid in pids:
            models = lookup(data, ("provider", pid, "models"))
            if not isinstance(models, dict):
                continue
            base = [m for m in self.servers[pid].base if m in models and (pid, m) not in self.deleted]
            if base:
                mid = self.rng.choice(base)
                return pid, mid, ("provider", pid, "models", mid), ABSENT
        return "", "", (), None


# --- the daemon from outside: /proc and the log -------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def proc_status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Sample:
    mono: float
    rss_kb: int
    cpu_s: float


@dataclass
class Sampler:
    """The daemon's VmRSS and CPU time every `step` seconds."""

    pid: int
    step: float = 2.0
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> None:
        self.take()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.take()

    def take(self) -> None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            self.samples.append(Sample(time.monotonic(), proc_status_kb(self.pid, "VmRSS"),
                                       proc_cpu_seconds(self.pid)))

    def _run(self) -> None:
        while not self._stop.wait(self.step):
            self.take()



def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return float("nan")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)] if ordered else float("nan")


def read_log(path: Path) -> list[tuple[dict[str, Any], int]]:
    """Each log line parsed (a line that is not JSON becomes {"event": text}) with its size in bytes."""
    out: list[tuple[dict[str, Any], int]] = []
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            if not isinstance(line, dict):
                line = {"event": raw.decode(errors="replace").rstrip("\n"), "unparsed": True}
            line["_raw"] = raw.decode(errors="replace")
            out.append((line, len(raw)))
    return out


def wall_of(line: dict[str, Any]) -> float | None:
    stamp = line.get("timestamp")
    if not isinstance(stamp, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(stamp).timestamp()
    return None


_TICKED = re.compile(r"`[^`]*`")
_PATHS = re.compile(r"/\S+")


def event_shape(line: dict[str, Any]) -> str:
    """A log line's event with the model IDs and paths in it blanked, to group lines by kind."""
    return _PATHS.sub("<path>", _TICKED.sub("`…`", str(line.get("event", ""))))[:90]


def composition(lines: Sequence[tuple[dict[str, Any], int]], top: int = 8) -> list[tuple[str, int, int]]:
    """The `top` kinds of line by bytes: (kind, lines, bytes)."""
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for line, n in lines:
        shape = f"{line.get('level', '?')}: {event_shape(line)}"
        count[shape] += 1
        size[shape] += n
    return [(shape, count[shape], size[shape]) for shape, _ in size.most_common(top)]


def cause(error: Any) -> str:
    """An error text reduced to its kind (for "target invalid" and failed provider lines)."""
    text = str(error or "")
    if LOCK_TEXT in text:
        what = "state.json" if "state.json" in text else "the config"
        return f"lock timeout on {what}"
    if "no such file" in text.lower():
        return "file missing"
    if "is read-only" in text:
        return "said read-only"
    if _POSITION.search(text):
        return "parse error"
    return _PATHS.sub("<path>", text)[:80]


_POSITION = re.compile(r":\d+:\d+: ")
# A line is logged after the read that failed, by seconds when the daemon is busy: a save that began
# this long before the line can explain it.
SAVE_WINDOW = 5.0
# What a save shows a reader in its window: an in-place save truncates, then writes (an empty or
# short file); a vim-style save renames the file away (no file; os.access on the missing path says
# "not writable", which syncd reports as read-only), then creates it empty and writes it.
WINDOWS = {"parse error": ("in-place", "vim"), "file missing": ("vim",), "said read-only": ("vim",)}


def explained_by_a_save(kind: str, at: float | None, edits: Sequence[Edit]) -> str | None:
    """Which save can explain a "target invalid" line of `kind` at wall time `at`. syncd itself
    writes atomically, so in this bench only the editor's saves show a torn or missing file; the
    time window is a sanity bound on that."""
    styles = WINDOWS.get(kind, ())
    if at is None:
        return None
    near = [e for e in edits if e.style in styles and 0 <= at - e.wall <= SAVE_WINDOW]
    return f"{kind}, {SAVE_WINDOW:g} s or less after a {near[-1].style} save" if near else None


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    """Poll `check` every 5 ms until true or `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.005)
    return bool(check())


def tombstones_not_made(state_file: Path, config: Path,
                        deleted: set[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """The (provider, ID) tombstones of syncd's state file the editor never deleted, and how many
    tombstones there are in all; (None-like) ([("?", "no state file")], -1) when it cannot be read."""
    try:
        doc = json.loads(state_file.read_text())
    except (OSError, ValueError) as e:
        return [("?", f"state file unreadable: {e}")], -1
    ours = {os.path.realpath(config), str(config)}
    stray: list[tuple[str, str]] = []
    total = 0
    for key, target in (doc.get("targets") or {}).items():
        if key not in ours and os.path.realpath(key) not in ours:
            continue
        for pid, ps in (target.get("providers") or {}).items():
            for mid in ps.get("tombstones") or []:
                total += 1
                if (pid, mid) not in deleted:
                    stray.append((pid, mid))
    return stray, total


def explain_tombstone(pid: str, mid: str, changes: Sequence[Change], lines: Sequence[dict[str, Any]],
                      t0: float) -> str:
    """What happened to a model syncd tombstoned on its own: did its server drop it, when did syncd
    log its removal, and when the tombstone (seconds from the start of the run, wall clock)."""
    dropped = next((c.wall - t0 for c in changes if c.what == "remove" and c.model == mid), None)
    removed = tomb = None
    for line in lines:
        if line.get("provider") != pid or mid not in (line.get("models") or line.get("tombstoned") or []):
            continue
        at = wall_of(line)
        if line.get("event") == "event.removed" and at is not None:
            removed = at - t0
        elif line.get("event") == "managed models deleted by hand" and at is not None and tomb is None:
            tomb = at - t0

    def fmt(x: float | None) -> str:
        return "never" if x is None else f"{x:.1f} s"

    return (f"{pid}/{mid}: server dropped it at {fmt(dropped)}, syncd logged its removal at "
            f"{fmt(removed)}, tombstoned at {fmt(tomb)}")


def last_save_before(at: float, edits: Sequence[Edit]) -> str:
    """The editor's last save before wall time `at`, as "style, N ms before"."""
    before = [e for e in edits if e.wall <= at]
    if not before:
        return "no save before it"
    e = before[-1]
    return f"#{e.n} {e.style} {e.kind} {1000 * (at - e.wall):.0f} ms before"


def log_rate(lines: Sequence[tuple[dict[str, Any], int]], start: float, end: float) -> float:
    """Bytes per minute of the lines between wall times `start` and `end` that the daemon writes at
    its default level (it runs with -v so that every sync is a line; debug lines are left out)."""
    size = sum(n for line, n in lines if line.get("level") != "debug"
               and start <= (wall_of(line) or 0.0) < end)
    return size / ((end - start) / 60) if end > start else float("nan")


def count_log(a: dict[str, Any], log: Path, healthy: set[str], edits: Sequence[Edit], w0: float, w1: float,
              interval: float) -> None:
    """The log's counts into `a`: syncs in the window [w0, w1] (wall), lock and invalid lines."""
    lines = read_log(log)
    synced: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    lock_by: Counter[str] = Counter()
    invalid_by: Counter[str] = Counter()
    for line, _ in lines:
        event = str(line.get("event", ""))
        if LOCK_TEXT in line["_raw"]:
            lock_by[f"{event[:40]} ({cause(line['_raw'])})"] += 1
        at = wall_of(line)
        if event.startswith("target invalid") and line.get("level") == "error":
            why = cause(line.get("error"))
            invalid_by[explained_by_a_save(why, at, edits) or why] += 1
        if event == "provider synced" and line.get("provider") in healthy and at and w0 <= at <= w1:
            if line.get("status") == "ok":
                synced[line["provider"]] += 1
            else:
                error = line.get("error")
                failed[f"{line.get('status')}" + (f": {cause(error)}" if error else "")] += 1
    scheduled = len(healthy) * (w1 - w0) / interval
    a["sync_pct"] = 100.0 * sum(synced.values()) / scheduled if scheduled else 0.0
    per = sorted(synced.values())
    a["sync_note"] = (f"{sum(synced.values())} ok of {scheduled:.0f} scheduled ({len(healthy)} providers x "
                      f"{w1 - w0:.0f} s / {interval:g} s); per provider min {per[0] if per else 0}, "
                      f"max {per[-1] if per else 0}; not ok: {sum(failed.values())}"
                      + "".join(f"; {n} {c}" for c, n in failed.most_common(3)))
    a["lock_lines"] = sum(lock_by.values())
    a["lock_note"] = "; ".join(f"{n} {c}" for c, n in lock_by.most_common(4))
    a["invalid"] = sum(n for c, n in invalid_by.items() if " save" not in c)
    a["invalid_note"] = (f"{sum(invalid_by.values())} in all" + (": " if invalid_by else "")
                         + "; ".join(f"{n} {c}" for c, n in invalid_by.most_common(5)))
    undid = [wall_of(line) for line, _ in lines if str(line.get("event", "")).startswith("a save undid")]
    a["undid"] = len(undid)
    a["undid_after"] = [last_save_before(at, edits) for at in undid if at is not None]
    a["removal_lines"] = [line for line, _ in lines if line.get("event") in (
        "event.removed", "managed models deleted by hand")]
    a["by_hand"] = sum(len(line.get("tombstoned") or []) for line, _ in lines
                       if line.get("event") == "managed models deleted by hand")
    a["in_flight_said"] = next((f"{line.get('count')} ({line.get('event')})" for line, _ in lines
                                if str(line.get("event", "")).startswith("waiting for")), "nothing in flight")
    a["composition"] = composition([x for x in lines if x[0].get("level") != "debug"])
    a["debug_bytes"] = sum(n for line, n in lines if line.get("level") == "debug")
    a["parsed_lines"] = lines
    a["log_lines"] = sum(1 for line, _ in lines if line.get("level") != "debug")
