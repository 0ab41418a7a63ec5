"""What one cycle did, per target and provider: the value the CLI prints and notifications read."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from syncd.model import Skipped


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"  # disabled in the settings, or left out by --provider


@dataclass(frozen=True, slots=True)
class ProviderReport:
    """One provider of one target after one cycle (the `providers[]` items of DESIGN §5.2)."""

    id: str
    status: Status
    kind: str | None = None
    error: str | None = None  # one line, no secrets
    error_label: str | None = None  # FetchError.label: unreachable, timeout, auth, ...
    retry_after: float | None = None  # seconds, when the provider was rate-limited and said so
    served: int = 0
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    tombstoned: tuple[str, ...] = ()  # managed entries found deleted by hand this cycle
    restored: tuple[str, ...] = ()  # dropped by a save from a stale buffer: to be added back
    suspicious: tuple[Skipped, ...] = ()  # served IDs refused as unsafe, with the reason
    warnings: tuple[str, ...] = ()  # e.g. "served an empty list; nothing removed"
    unserved: tuple[str, ...] = ()  # user-owned IDs the last fetch did not list (revalidation)
    failures: int = 0  # consecutive failed fetches, this one included (0 when ok)
    ms: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated)


@dataclass(frozen=True, slots=True)
class TargetReport:
    """One target after one cycle; `error` is set when the target itself could not be handled."""

    path: str
    changed: bool = False
    error: str | None = None  # e.g. "/home/u/.config/opencode/opencode.json:12:5: expected ','"
    providers: tuple[ProviderReport, ...] = field(default=())
    diff: str = ""  # unified diff of the change (filled for --dry-run)
    overlay: str | None = None  # the file holding syncd's models, when not the target itself
    notes: tuple[str, ...] = ()  # what the user should hear once: a fallback to the overlay, moves


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`1 model`, `2 models` (`many` for nouns that do not just take an s)."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"
