"""The one place an error becomes what the user sees: one `syncd: …` line on stderr, one JSON
document on stdout for `--json`, and the exit code of DESIGN §3."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from syncd.errors import SettingsError, StateError, SyncdError, UsageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_DRIFT = 4
EXIT_INTERRUPTED = 130

# A settings file syncd cannot read stops every command before it does anything, and the fix is
# in the user's own input, as with a wrong flag: 2, not 1 (which promises the rest was done).
# `doctor` is the exception: it reports the settings as a failed check and runs the rest.
_KINDS: tuple[tuple[type[SyncdError], str, int], ...] = (
    (UsageError, "usage", EXIT_USAGE),
    (SettingsError, "settings", EXIT_USAGE),
    (StateError, "state", EXIT_FAILED),
    (SyncdError, "error", EXIT_FAILED),
)


def wants_json(argv: Sequence[str]) -> bool:
    """`--json` among the options (before a `--`), even when they do not parse."""
    options = argv[: list(argv).index("--")] if "--" in argv else argv
    return "--json" in options


def classify(exc: BaseException) -> tuple[str, int, str]:
    """(kind, exit code, one-line message) of anything a command raised."""
    for typ, kind, code in _KINDS:
        if isinstance(exc, typ):
            return kind, code, " ".join(str(exc).split())
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED, "interrupted; nothing half-written was left behind"
    if isinstance(exc, OSError):  # the machine's fault (a path, a permission, a full disk), not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        return "os", EXIT_FAILED, (f"{where}{exc.strerror or exc}; check that the path exists and "
                                   "that you may read and write it")
    return "internal", EXIT_INTERNAL, (
        f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}. Please report it; "
        "nothing half-written was left behind.")


def report(exc: BaseException, *, as_json: bool, out: Callable[[str], None],
           err: Callable[[str], None]) -> int:
    """Say what went wrong on stderr (and as the one JSON document on stdout); the exit code."""
    kind, code, message = classify(exc)
    err(f"syncd: {message}")
    if as_json:
        out(json.dumps({"error": {"kind": kind, "message": message, "exit_code": code}},
                       ensure_ascii=False))
    return code
