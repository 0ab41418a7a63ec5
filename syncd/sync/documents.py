"""Config files parsed once per distinct bytes: the daemon reads the same files many times a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncd import jsonc
from syncd.sync.snapshot import Snapshot, read_target, sha256_bytes

# path -> (sha256 of the text, the text parsed). Parsed documents are shared: no caller may
# change one (the planner and every reader treat them as read-only). Runs in the event loop
# and in write threads alike: the worst a race costs is a second parse.
_last: dict[Path, tuple[str, Any]] = {}


def parse_text(path: Path, text: str) -> Any:
    """`text` (the contents of `path`, or what it would hold) parsed; JsoncError as `jsonc.parse`."""
    sha = sha256_bytes(text.encode("utf-8", "surrogatepass"))
    last = _last.get(path)
    if last is not None and last[0] == sha:
        return last[1]
    doc = jsonc.parse(text)
    _last[path] = (sha, doc)
    return doc


def read_parsed(path: Path) -> tuple[Snapshot, Any]:
    """`path` read (see `read_target`) and parsed; TargetError, JsoncError."""
    snap = read_target(path)
    return snap, parse_text(path, snap.text)
