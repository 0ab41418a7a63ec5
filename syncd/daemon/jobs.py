"""The daemon's jobs: which (target, provider) jobs exist, how each last went, and when each runs next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from syncd.daemon import schedule_file
from syncd.daemon.schedule import JobKey, JobScheduler, diff_jobs, jittered, next_delay, outcome_of
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.targets import JobSpec

log = structlog.get_logger("syncd.daemon")


def status_line(ok: int, failing: int, next_in: float | None) -> str:
    """The STATUS= text systemd shows: "3 providers ok, 1 failing, next in 58s"."""
    parts = [f"{ok} provider{'' if ok == 1 else 's'} ok"]
    if failing:
        parts.append(f"{failing} failing")
    if next_in is not None:
        parts.append(f"next in {max(0, round(next_in))}s")
    return ", ".join(parts)


@dataclass
class Activity:
    """Runs since the last summary: the one line a quiet daemon logs, once a period."""

    syncs: int = 0
    failed: int = 0
    changed: int = 0

    def count(self, p: ProviderReport) -> None:
        self.syncs += 1
        self.failed += p.status is Status.ERROR
        self.changed += p.changed

    def take(self) -> dict[str, int]:
        out = {"syncs": self.syncs, "failed": self.failed, "changed": self.changed}
        self.syncs = self.failed = self.changed = 0
        return out


class Jobs:
    """One scheduled job per (target, provider); each run's outcome sets the job's next run."""

    def __init__(self, fire: Callable[[JobKey], Awaitable[None]], rng: Callable[[], float]) -> None:
        self.sched = JobScheduler(fire)
        self._rng = rng
        self._specs: dict[JobKey, JobSpec] = {}
        self._failures: dict[JobKey, int] = {}
        self._ok: dict[JobKey, bool] = {}
        self._notes: dict[JobKey, tuple[str, ...]] = {}  # each provider's warnings, logged once
        self._said: dict[JobKey, str | None] = {}  # the error last logged (None: ok)
        self.activity = Activity()
        self.generation = 0  # counts the reconciles that changed a job

    def __contains__(self, key: JobKey) -> bool:
        return key in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def keys(self) -> list[JobKey]:
        return sorted(self._specs)

    def by_target(self) -> dict[Path, list[str]]:
        out: dict[Path, list[str]] = {}
        for target, pid in self._specs:
            out.setdefault(target, []).append(pid)
        return out

    def reconcile(self, wanted: Iterable[JobSpec], keep: Collection[Path]) -> dict[Path, list[str]]:
        """Bring the jobs in line with `wanted` (jobs of `keep` targets stay); returns what to sync now."""
        changes = diff_jobs(self._specs, wanted, keep)
        self.generation += bool(changes)
        now = datetime.now(UTC)
        for key in changes.removed:
            log.info("job dropped", target=str(key[0]), provider=key[1])
            self.sched.remove(key)
            for d in (self._specs, self._failures, self._ok, self._notes, self._said):
                d.pop(key, None)
        to_sync: dict[Path, list[str]] = {}
        for spec in (*changes.added, *changes.refetch, *changes.retimed):
            key = (spec.target, spec.provider_id)
            self._specs[key] = spec
            self.sched.put(key, spec.interval, jittered(spec.interval, self._rng()), now)
            if spec not in changes.retimed:
                to_sync.setdefault(spec.target, []).append(spec.provider_id)
        return to_sync

    def ran(self, target: Path, provider_ids: Iterable[str], report: TargetReport) -> None:
        """Schedule each provider's next run from how this one went, and log it."""
        now = datetime.now(UTC)
        by_id = {p.id: p for p in report.providers}
        for pid in provider_ids:
            key = (target, pid)
            spec = self._specs.get(key)
            if spec is None:
                continue  # dropped while it ran
            outcome = outcome_of(report, pid)
            failures = 0 if outcome.ok else self._failures.get(key, 0) + 1
            self._failures[key], self._ok[key] = failures, outcome.ok
            delay = next_delay(outcome, failures, spec.interval, self._rng())
            self.sched.defer(key, delay, now)
            p = by_id.get(pid)
            fields = {"target": str(target), "provider": pid, "next_in": round(delay, 1)}
            if p is None:
                level = "warning" if self._said.get(key, "never") != report.error else "debug"
                self._said[key] = report.error
                getattr(log, level)("provider not synced", error=report.error, **fields)
                continue
            if p.status is Status.OK and p.warnings != self._notes.get(key, ()):
                # "does not list its models" and the like hold every cycle: say them when they change
                for note in p.warnings:
                    if note not in self._notes.get(key, ()):
                        log.warning(note, **fields)
                self._notes[key] = p.warnings
            self.activity.count(p)
            self._log_run(key, p, failures, fields)

    def _log_run(self, key: JobKey, p: ProviderReport, failures: int, fields: dict[str, Any]) -> None:
        """Info when the run changed the file or the provider's health, else debug: a provider
        synced every second for a week logs what happened, not that it happened."""
        error = p.error if p.status is Status.ERROR else None
        before = self._said.get(key, "never")
        self._said[key] = error
        if error is not None:
            level = "warning" if error != before else "debug"
        elif p.changed or p.tombstoned or before not in (None, "never"):
            level = "info"  # models changed, or ok again after failing
        else:
            level = "info" if before == "never" else "debug"
        getattr(log, level)(
            "provider synced", status=str(p.status), served=p.served, added=len(p.added),
            removed=len(p.removed), updated=len(p.updated), skipped=len(p.skipped),
            ms=p.ms, error=p.error, failures=failures, **fields,
        )

    def next_run(self, key: JobKey) -> datetime | None:
        return self.sched.next_run_of(key)

    def status(self) -> str:
        ok = sum(1 for k in self._specs if self._ok.get(k, True))
        nxt = self.sched.next_run()
        next_in = (nxt - datetime.now(UTC)).total_seconds() if nxt else None
        return status_line(ok, len(self._specs) - ok, next_in)

    def publish(self, state_dir: Path) -> None:
        """Write when each job runs next for `syncd status` (the daemon's schedule file)."""
        schedule_file.publish(state_dir, {k: self.next_run(k) for k in self._specs})
