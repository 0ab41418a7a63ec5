"""One sync cycle per target (read, fetch, plan, patch, write, record, notify) for `once` and `run`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from syncd import jsonc, paths
from syncd.errors import FetchError, StateError, SyncdError, TargetError
from syncd.model import FetchResult, ProviderSpec
from syncd.notify.events import (
    Event,
    events_for_valid_target,
    events_from_report,
)
from syncd.providers.blocks import custom_providers, models_of
from syncd.providers.catalog import Catalog, load_catalog_async
from syncd.providers.credentials import load_auth, provider_spec
from syncd.providers.discover import FetchCache, fetch_many, make_client
from syncd.report import ProviderReport, Status, TargetReport
from syncd.settings import Settings, load_settings
from syncd.sync.locks import target_lock
from syncd.sync.outcome import Fetched, failed_all, target_report, unserved_warnings
from syncd.sync.plan import ProviderPlan, plan_provider, protected_models
from syncd.sync.records import State, target_key
from syncd.sync.state import load_state, save_state, state_file
from syncd.sync.store import (
    WriteResult,
    atomic_write_bytes,
    read_target,
    sha256_bytes,
    write_target,
)
from syncd.sync.targets import JobSpec, provider_jobs, resolve_targets

CACHE_NAME = "fetch-cache.json"
CATALOG_MAX_AGE = 86400.0


@dataclass
class _Cycle:
    """What the transform computed on the text it was last given (it may run more than once)."""

    plans: dict[str, ProviderPlan] = field(default_factory=dict)


class Engine:
    """Runs cycles for the targets the settings and flags select; the daemon decides when."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cli_configs: Sequence[str] | None = None,
        notify: Callable[[Sequence[Event]], Any] | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._cli_configs = list(cli_configs or [])
        self._notify = notify
        self._client = client
        self._own_client = client is None
        self._clock = clock
        self._state_dir = paths.state_dir()
        self._cache = self._load_cache()
        self._catalog: Catalog | None = None
        self._catalog_at = 0.0
        self._invalid: dict[str, str] = {}  # target key -> the error last reported for it
        self._pending: list[Event] = []  # events found outside a cycle, sent with the next batch

    # --- what there is to do ------------------------------------------------------------------

    def targets(self) -> list[Path]:
        return resolve_targets(self._cli_configs, self.settings.configs)

    def watched_files(self) -> list[Path]:
        from syncd.paths import opencode_auth_file, opencode_config_dir, settings_file

        files = self.targets() + [settings_file(), opencode_auth_file()]
        if not self._cli_configs and not self.settings.configs:
            # a global file that does not exist yet is a target as soon as it appears
            files += [opencode_config_dir() / n for n in paths.OPENCODE_GLOBAL_NAMES]
        return list(dict.fromkeys(files))

    def jobs(self) -> list[JobSpec]:
        return provider_jobs(self.targets(), self.settings)

    def last_written_sha256(self, target: Path) -> str | None:
        try:
            return load_state().target(target).last_write_sha256
        except StateError:
            return None

    def auth_failed_providers(self) -> list[tuple[Path, str]]:
        try:
            state = load_state()
        except StateError:
            return []
        return [
            (target, pid)
            for target in self.targets()
            for pid, ps in state.target(target).providers.items()
            if ps.last_error_label == "auth"
        ]

    def reload(self) -> None:
        self.settings = load_settings()

    # --- the cycle ----------------------------------------------------------------------------

    async def sync_all(
        self, provider_ids: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> list[TargetReport]:
        targets = self.targets()
        reports = await asyncio.gather(
            *(self.sync(t, provider_ids, dry_run=dry_run) for t in targets)
        )
        self._save_cache()
        return list(reports)

    async def sync_preview(
        self, target: Path, text: str, provider_ids: Sequence[str] | None = None
    ) -> TargetReport:
        """A dry-run cycle as if `target` held `text` (e.g. after `syncd add --dry-run`).

        The diff runs from what is on disk now, so it shows `text`'s own change too.
        """
        return await self.sync(target, provider_ids, dry_run=True, text=text,
                               diff_base=read_target(target).text)

    async def sync(
        self,
        target: Path,
        provider_ids: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        text: str | None = None,
        diff_base: str | None = None,
    ) -> TargetReport:
        """One cycle of one target; every failure of a provider or of the target is in the report."""
        path = str(target)
        try:
            if text is None:
                snap = read_target(target)
                if not snap.exists:
                    return TargetReport(path, error=f"{path}: no such file")
                text = snap.text
            data = jsonc.parse(text)
        except jsonc.JsoncError as exc:
            return await self._invalid_target(TargetReport(path, error=f"{path}:{exc}"))
        except TargetError as exc:
            return TargetReport(path, error=str(exc))
        blocks = custom_providers(data)
        chosen, skipped = self._choose(blocks, provider_ids)
        fetched = await self._fetch(target, chosen)

        cycle = _Cycle()
        try:
            before = load_state()
        except StateError as exc:
            return TargetReport(path, error=str(exc))

        def transform(text: str) -> str | None:
            state = load_state().settled(target, sha256_bytes(text.encode("utf-8")))
            doc = jsonc.parse(text)
            cycle.plans = self._plan(target, doc, fetched, state)
            changes = [
                (("provider", pid, *p), value)
                for pid, plan in cycle.plans.items()
                for p, value in plan.changes
            ]
            return jsonc.modify_many(text, changes) if changes else None

        def transform_marked(text: str) -> str | None:
            new_text = transform(text)
            if new_text is not None and new_text != text:
                self._mark_pending(target, text, new_text, cycle)
            return new_text

        try:
            if dry_run:
                new_text = transform(text)
                if diff_base is not None:
                    return target_report(path, fetched, cycle.plans, skipped, before, diff_base,
                                         text if new_text is None else new_text, with_diff=True)
                return target_report(path, fetched, cycle.plans, skipped, before, text, new_text,
                                     with_diff=True)
            # in a thread: waiting for another syncd's lock must not stall the daemon's loop
            result = await asyncio.to_thread(
                write_target,
                target,
                transform_marked,
                state_dir=self._state_dir,
                after=lambda r: self._record(target, fetched, cycle, r),
            )
        except jsonc.JsoncError as exc:
            return await self._invalid_target(TargetReport(path, error=f"{path}:{exc}"))
        except SyncdError as exc:
            return TargetReport(path, error=str(exc), providers=failed_all(fetched, exc))
        report = target_report(path, fetched, cycle.plans, skipped, before, result.old_text,
                               result.new_text if result.changed else None)
        self._valid_again(target)
        await self._emit(events_from_report(report, previous_failures=self._failures(before, target)))
        return report

    def _choose(
        self, blocks: Mapping[str, Mapping[str, Any]], provider_ids: Sequence[str] | None
    ) -> tuple[dict[str, Mapping[str, Any]], list[ProviderReport]]:
        chosen: dict[str, Mapping[str, Any]] = {}
        skipped: list[ProviderReport] = []
        for pid, block in blocks.items():
            if provider_ids is not None and pid not in provider_ids:
                skipped.append(ProviderReport(pid, Status.SKIPPED))
            elif not self.settings.policy(pid).enabled:
                skipped.append(ProviderReport(pid, Status.SKIPPED, error="disabled in the settings"))
            else:
                chosen[pid] = block
        return chosen, skipped

    async def _fetch(self, target: Path, blocks: Mapping[str, Mapping[str, Any]]) -> list[Fetched]:
        from syncd.logs import register_secret

        auth = load_auth()
        out: list[Fetched] = []
        specs: list[ProviderSpec] = []
        for pid, block in blocks.items():
            try:
                spec = provider_spec(pid, block, target, auth, kind=self.settings.policy(pid).kind)
            except SyncdError as exc:
                out.append(Fetched(pid, FetchError(f"{pid}: {exc}"), 0))
                continue
            if spec is None:  # custom_providers saw a baseURL string: it resolved to ""
                reason = f"{pid}: options.baseURL is empty (is its variable set where syncd runs?)"
                out.append(Fetched(pid, FetchError(reason), 0))
                continue
            if spec.api_key:
                register_secret(spec.api_key.reveal())
            for value in spec.headers.values():
                register_secret(value.reveal())
            specs.append(spec)
        client = await self.http()
        catalog = await self._catalog_now(client)
        started = time.monotonic()
        results = await fetch_many(
            specs, client, limits=self.settings.limits(), cache=self._cache, catalog=catalog
        )
        ms = int((time.monotonic() - started) * 1000)
        out += [Fetched(s.id, r, ms) for s, r in zip(specs, results, strict=True)]
        return out

    def _plan(
        self, target: Path, doc: Any, fetched: list[Fetched], state: State
    ) -> dict[str, ProviderPlan]:
        blocks = custom_providers(doc)
        catalog = self._catalog
        plans: dict[str, ProviderPlan] = {}
        for f in fetched:
            block = blocks.get(f.pid)
            if block is None:  # the user removed the provider while we were fetching
                continue
            plans[f.pid] = plan_provider(
                current=models_of(block),
                fetched=f.result if isinstance(f.result, FetchResult) else None,
                state=state.provider(target, f.pid),
                policy=self.settings.policy(f.pid),
                protected=protected_models(doc, f.pid),
                catalog_has_provider=catalog is not None and catalog.has_provider(f.pid),
                block=block,
            )
        return plans

    def _record(
        self, target: Path, fetched: list[Fetched], cycle: _Cycle, result: WriteResult
    ) -> None:
        """Save what this cycle learned; runs under the target lock, and under the state lock."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        with target_lock(state_file(), self._state_dir):
            # drops this cycle's own pending record (its plans follow) and settles a killed one's
            state = load_state().settled(target, sha256_bytes(result.old_text.encode("utf-8")))
            for f in fetched:
                plan = cycle.plans.get(f.pid)
                ps = plan.state if plan is not None else state.provider(target, f.pid)
                if isinstance(f.result, FetchError):
                    ps = ps.failed(f.result.reason, f.result.label)
                else:
                    ps = ps.succeeded(now)
                state = state.with_provider(target, f.pid, ps)
            if result.changed:
                state = state.with_write(target, result.sha256, now)
            save_state(state)

    def _mark_pending(self, target: Path, old_text: str, new_text: str, cycle: _Cycle) -> None:
        """Record what this write will mean before it lands (see `State.settled`)."""
        with target_lock(state_file(), self._state_dir):
            state = load_state().settled(target, sha256_bytes(old_text.encode("utf-8")))
            pending = {pid: plan.state for pid, plan in cycle.plans.items()}
            save_state(state.with_pending(target, sha256_bytes(new_text.encode("utf-8")), pending))

    @staticmethod
    def _failures(before: State, target: Path) -> dict[str, int]:
        return {pid: ps.failures for pid, ps in before.target(target).providers.items()}

    # --- revalidation after a change on disk ----------------------------------------------------

    async def revalidate(self, target: Path) -> TargetReport:
        """Record hand deletions (tombstones) and warn about user-owned IDs the provider does not serve."""
        path = str(target)
        try:
            snap = read_target(target)
            data = jsonc.parse(snap.text)
        except jsonc.JsoncError as exc:
            return await self._invalid_target(TargetReport(path, error=f"{path}:{exc}"))
        except TargetError as exc:
            return TargetReport(path, error=str(exc))
        self._valid_again(target)
        reports: list[ProviderReport] = []
        with target_lock(state_file(), self._state_dir):
            state = load_state().settled(target, snap.sha256)
            for pid, block in custom_providers(data).items():
                ps = state.provider(target, pid)
                plan = plan_provider(
                    current=models_of(block), fetched=None, state=ps,
                    policy=self.settings.policy(pid), protected=protected_models(data, pid),
                    catalog_has_provider=False, block=block,
                )
                state = state.with_provider(target, pid, plan.state)
                warnings = unserved_warnings(models_of(block) or {}, plan.state)
                reports.append(ProviderReport(pid, Status.OK, kind=ps.kind, served=ps.served,
                                              tombstoned=plan.tombstoned, warnings=warnings))
            save_state(state)
        return TargetReport(path, providers=tuple(reports))

    # --- notifications --------------------------------------------------------------------------

    async def _invalid_target(self, report: TargetReport) -> TargetReport:
        """Notify about an invalid target once per distinct error, then leave it alone."""
        key = target_key(report.path)
        if self._invalid.get(key) != report.error:
            self._invalid[key] = report.error or ""
            await self._emit(events_from_report(report))
        return report

    def _valid_again(self, target: Path) -> None:
        if self._invalid.pop(target_key(target), None) is not None:
            self._pending.extend(events_for_valid_target(str(target)))

    async def _emit(self, events: Sequence[Event]) -> None:
        batch = [*self._pending, *events]
        self._pending = []
        if batch and self._notify is not None:
            outcome = self._notify(batch)
            if asyncio.iscoroutine(outcome):
                await outcome

    # --- shared resources -----------------------------------------------------------------------

    async def http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.settings.limits())
        return self._client

    async def _catalog_now(self, client: httpx.AsyncClient) -> Catalog:
        now = self._clock()
        if self._catalog is None or now - self._catalog_at > CATALOG_MAX_AGE:
            self._catalog = await load_catalog_async(
                self.settings.catalog, now=now, state_dir=self._state_dir, client=client,
                limits=self.settings.limits(),
            )
            self._catalog_at = now
        return self._catalog

    def _load_cache(self) -> FetchCache:
        try:
            return FetchCache.from_json(json.loads((self._state_dir / CACHE_NAME).read_bytes()))
        except (OSError, ValueError):
            return FetchCache()

    def _save_cache(self) -> None:
        data = json.dumps(self._cache.to_json()).encode()
        try:
            self._state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_bytes(self._state_dir / CACHE_NAME, data, mode=0o600)
        except OSError:
            pass  # a cache that cannot be saved is rebuilt next time

    async def aclose(self) -> None:
        self._save_cache()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

