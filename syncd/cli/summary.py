"""Renders cycle reports and the state file as the text and JSON the CLI prints (pure)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from syncd.report import ProviderReport, Status, TargetReport

WIDTH = 80
_HEAD = (
    f"  {'provider':<18} {'status':<7} {'served':>6} {'+add':>5} {'-rm':>4} {'~upd':>5} "
    f"{'skip':>5} {'ms':>6}"
)


def any_failed(reports: Iterable[TargetReport]) -> bool:
    return any(
        r.error or any(p.status is Status.ERROR for p in r.providers) for r in reports
    )


def home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path


def tilde(text: str) -> str:
    """Every path under the home in `text` written with `~`."""
    here = os.path.expanduser("~")
    return text.replace(here + os.sep, "~" + os.sep) if here != "/" else text


def fit(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(p: ProviderReport) -> list[str]:
    pid = p.id if len(p.id) <= 18 else p.id[:17] + "…"
    if p.status is Status.ERROR:
        return [f"  {pid:<18} {'error':<7}", *wrapped(p.error or "failed")]
    if p.status is Status.SKIPPED:
        return [fit(f"  {pid:<18} {'skipped':<7} {p.error or 'not selected'}")]
    lines = [
        f"  {pid:<18} {'ok':<7} {p.served:>6} {len(p.added):>5} {len(p.removed):>4} "
        f"{len(p.updated):>5} {len(p.skipped):>5} {p.ms:>6}"
    ]
    notes = [*p.warnings]
    notes += [f"'{s.id}' not written: {s.reason}" for s in p.suspicious]  # s.id is escaped already
    if p.withheld:
        notes.append(f"not removed (model/small_model uses it): {', '.join(p.withheld)}")
    if p.pending:
        notes.append(f"gone upstream, removed after the grace period: {', '.join(p.pending)}")
    if p.tombstoned:
        notes.append(f"deleted by hand, will not be re-added: {', '.join(p.tombstoned)} "
                     f"(`syncd restore {p.id}/MODEL` undoes)")
    for note in notes:
        lines += wrapped(note)
    return lines


def wrapped(note: str) -> list[str]:
    """A note under its provider's row, wrapped to 80 columns without splitting URLs or IDs."""
    return textwrap.wrap(note, WIDTH, initial_indent="    ! ", subsequent_indent="      ",
                         break_long_words=False, break_on_hyphens=False)


NO_TARGETS = ("no OpenCode config to maintain: none of ~/.config/opencode/{config.json,"
              "opencode.json,opencode.jsonc} exists; pass --config FILE or run `syncd add`")


def errors(reports: Sequence[TargetReport]) -> list[str]:
    """Diagnostics for stderr: each config that could not be handled, or that there is none."""
    return [r.error for r in reports if r.error] if reports else [NO_TARGETS]


def format_reports(reports: Sequence[TargetReport], *, dry_run: bool = False) -> str:
    """The results: one block per config handled, one row per provider, fitting 80 columns
    (the configs that could not be handled are `errors`, for stderr)."""
    out: list[str] = []
    for r in reports:
        if r.error:
            continue
        verb = "would change" if dry_run else "changed"
        out.append(f"{home(r.path)}{f'  ({verb})' if r.changed else ''}")
        if r.overlay:
            out.append(fit(f"  syncd's models are in {home(r.overlay)} (overlay)"))
        for note in r.notes:
            out += wrapped(tilde(note))
        if r.providers:
            out.append(_HEAD)
            for p in r.providers:
                out.extend(_row(p))
        else:
            out.append("  no custom providers (blocks with options.baseURL)")
        if dry_run and r.diff:
            out.append(r.diff.rstrip("\n"))
    return "\n".join(out) + "\n" if out else ""


def _provider_json(p: ProviderReport) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "status": str(p.status),
        "error": p.error,
        "served": p.served,
        "added": list(p.added),
        "removed": list(p.removed),
        "updated": list(p.updated),
        "skipped": list(p.skipped),
        "withheld": list(p.withheld),
        "pending": list(p.pending),
        "ms": p.ms,
    }


def to_json(reports: Sequence[TargetReport]) -> str:
    """DESIGN §5.2, plus `overlay` (the file holding the target's models) when there is one."""
    doc = {
        "targets": [
            {
                "path": r.path,
                "changed": r.changed,
                "error": r.error,
                # only for a target whose models live in an overlay file (write mode "overlay")
                **({"overlay": r.overlay} if r.overlay else {}),
                "providers": [_provider_json(p) for p in r.providers],
            }
            for r in reports
        ]
    }
    return json.dumps(doc, ensure_ascii=False) + "\n"
