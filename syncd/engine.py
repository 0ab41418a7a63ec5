"""One sync cycle per target (read, fetch, plan, patch, write, record, notify) for `once` and `run`."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from syncd import jsonc, paths
from syncd.errors import StateError, SyncdError, TargetError, TargetParseError
from syncd.notify.announce import Announcer
from syncd.providers.blocks import custom_providers
from syncd.providers.catalog import Catalog, load_catalog_async
from syncd.providers.discover import CACHE_FILE, make_client
from syncd.report import ProviderReport, TargetReport
from syncd.settings import Settings, load_settings
from syncd.sync.atomic import sweep_stale_temps
from syncd.sync.cachefile import CacheFile
from syncd.sync.cycle import Planner, choose, fetch_blocks
from syncd.sync.documents import parse_text
from syncd.sync.merged import references_outside
from syncd.sync.outcome import failed_all, target_report
from syncd.sync.overlay import (
    LayeredPlanner,
    Layout,
    layered_report,
    layout_for,
    own_targets,
    preview_layered,
    write_layered,
)
from syncd.sync.record import write_planned
from syncd.sync.records import State, target_key
from syncd.sync.rounds import Quiet, Round, merge, quiet_after, quiet_report
from syncd.sync.state import load_state, state_generation
from syncd.sync.store import read_target
from syncd.sync.targets import JobSpec, provider_jobs, resolve_targets

if TYPE_CHECKING:
    from syncd.notify.events import Event
    from syncd.sync.local import LocalStore, SpecCache

CACHE_NAME = CACHE_FILE
CATALOG_MAX_AGE = 86400.0
# An editor saving in place truncates, then writes; one saving vim-style creates the file empty,
# then writes: a read at that moment finds an empty or cut-off document. Before a config that
# does not parse is called invalid (an error, a notification), it is read once more this later.
MID_SAVE = 0.2


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
        self._announce = Announcer(notify)
        self._client = client
        self._own_client = client is None
        self._clock = clock
        self._state_dir = paths.state_dir()
        self._sweep()
        self._cache_file = CacheFile(self._state_dir / CACHE_NAME)
        self._cache = self._cache_file.load()
        self._catalog: Catalog | None = None
        self._catalog_at = 0.0
        self._local_specs: SpecCache | None = None
        self._quiet: dict[Path, Quiet] = {}  # targets whose last cycle changed nothing (see rounds)
        self._stopping = threading.Event()  # set by `stop()`: a write waiting for a lock gives up

    # --- what there is to do ------------------------------------------------------------------

    def targets(self) -> list[Path]:
        return own_targets(resolve_targets(self._cli_configs, self.settings.configs), self.layout)

    def layout(self, target: Path) -> Layout:
        """Where `target`'s models are written: in place, or an overlay file (DESIGN §4.5)."""
        try:
            recorded = load_state().target(target).overlay
        except StateError:
            recorded = None
        return layout_for(target, self.settings, recorded)

    def watched_files(self) -> list[Path]:
        from syncd.paths import opencode_auth_file, opencode_config_dir, settings_file

        targets = self.targets()
        overlays = [f for t in targets for f in self.layout(t).files[1:]]
        files = targets + overlays + [settings_file(), opencode_auth_file()]
        if not self._cli_configs and not self.settings.configs:
            # a global file that does not exist yet is a target as soon as it appears
            files += [opencode_config_dir() / n for n in paths.OPENCODE_GLOBAL_NAMES]
        return list(dict.fromkeys(files))

    def jobs(self) -> list[JobSpec]:
        return provider_jobs(self.targets(), self.settings)

    def own_writes(self, target: Path) -> frozenset[str]:
        """Hashes of the bytes syncd's last write of `target` put there (recorded, or about to be)."""
        try:
            ts = load_state().target(target)
        except StateError:
            return frozenset()
        return frozenset(h for h in (ts.last_write_sha256, ts.pending_sha256) if h)

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
        self._quiet.clear()  # a policy may have changed what a plan does with the same answer

    def stop(self) -> None:
        """Stopping: a write still waiting for a lock gives up instead of holding up the exit."""
        self._stopping.set()

    # --- the cycle ----------------------------------------------------------------------------

    async def sync_all(
        self, provider_ids: Sequence[str] | None = None, *, dry_run: bool = False,
        previews: Mapping[Path, str] | None = None,
    ) -> list[TargetReport]:
        """One cycle per target; `previews` (dry run only): targets as if they held that text,
        with the diff from what is on disk (a file that does not exist yet is a target then)."""
        targets = self.targets()
        shown = {os.path.abspath(p): text for p, text in (previews or {}).items()}
        targets += [Path(p) for p in shown if Path(p) not in targets]
        reports = await asyncio.gather(*(
            self.sync_preview(t, shown[str(t)], provider_ids) if str(t) in shown
            else self.sync(t, provider_ids, dry_run=dry_run) for t in targets))
        self._cache_file.save(self._cache)
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
        rnd = await self.fetch(target, provider_ids, text=text)
        return await self.apply(target, [rnd], dry_run=dry_run, diff_base=diff_base)

    async def fetch(
        self, target: Path, provider_ids: Sequence[str] | None = None, *, text: str | None = None
    ) -> Round:
        """Ask the target's chosen providers what they serve (`text`: as if the target held it).

        A target read before with the same bytes is not parsed again.
        """
        path = str(target)
        try:
            if text is None:
                read = await self._read_parsed(target)
                if read is None:
                    return Round(target, report=TargetReport(path, error=f"{path}: no such file"))
                text, doc = read
            else:
                doc = parse_text(target, text)
        except jsonc.JsoncError as exc:
            return Round(target, report=await self._invalid_target(TargetReport(path, error=f"{path}:{exc}")))
        except TargetError as exc:
            return Round(target, report=TargetReport(path, error=str(exc)))
        chosen, skipped = choose(custom_providers(doc), provider_ids, self.settings)
        client = await self.http()
        catalog = await self._catalog_now(client)
        fetched = await fetch_blocks(target, chosen, self.settings, client, self._cache, catalog)
        return Round(target, tuple(fetched), tuple(skipped), text)

    async def apply(
        self, target: Path, rounds: Sequence[Round], *, dry_run: bool = False,
        diff_base: str | None = None,
    ) -> TargetReport:
        """Plan the answers of `rounds` (one target's, newest last) as one, and write that once.

        The plan is made from the file as it is when written, not as it was when fetched. An
        answer that is the same as last time, of a file and state that are too, is not planned.
        """
        rnd = merge(rounds)
        if rnd.report is not None:
            return rnd.report
        path, text = str(target), rnd.text
        if diff_base is not None and not os.path.lexists(target):
            # a dry run of a file detection or `syncd add` would create: its folder is made then
            layout = Layout(target, target, (target,))
        else:
            layout = self.layout(target)
        if layout.error is not None:
            return await self._invalid_target(TargetReport(path, error=layout.error))
        fetched, skipped = list(rnd.fetched), list(rnd.skipped)
        catalog = self._catalog
        if not dry_run and not layout.layered and (quiet := self._unchanged(target, rnd)):
            return quiet
        try:
            before = load_state()
        except StateError as exc:
            return TargetReport(path, error=str(exc))
        if layout.layered:
            layered = LayeredPlanner(target, fetched, self.settings, catalog,
                                     references_outside(target), layout=layout,
                                     target_text=text if diff_base is not None else None)
            return await self._sync_layered(layered, skipped, before, dry_run=dry_run,
                                            diff_base=diff_base)

        planner = Planner(target, fetched, self.settings, catalog, references_outside(target),
                          parse=lambda text: parse_text(target, text))
        try:
            if dry_run:
                new_text = planner(text)
                if diff_base is not None:  # the diff shows `text`'s own change too
                    old_text, new_text = diff_base, text if new_text is None else new_text
                else:
                    old_text = text
                return target_report(path, fetched, planner.plans, skipped, before, old_text,
                                     new_text, with_diff=True)
            state_id = state_generation()
            # in a thread: waiting for another syncd's lock must not stall the daemon's loop
            result = await asyncio.to_thread(
                write_planned, target, planner, state_dir=self._state_dir, clock=self._clock,
                abort=self._stopping,
            )
        except jsonc.JsoncError as exc:
            return await self._invalid_target(TargetReport(path, error=f"{path}:{exc}"))
        except SyncdError as exc:
            return TargetReport(path, error=str(exc), providers=failed_all(fetched, exc))
        report = target_report(path, fetched, planner.plans, skipped, before, result.old_text,
                               result.new_text if result.changed else None)
        learned = {pid: (before.provider(target, pid), plan.state) for pid, plan in planner.plans.items()}
        memo = quiet_after(
            report, fetched, learned, file_sha256=result.sha256, state_ids=(state_id, state_generation()),
            now=self._clock(), previous=self._quiet.pop(target, None))
        if memo is not None:
            self._quiet[target] = memo
        self._valid_again(target)
        await self._announce.synced(report, _failures(before, target))
        return report

    async def _read_parsed(self, target: Path) -> tuple[str, Any] | None:
        """The target's text and data (None: no such file). A text that does not parse is read
        once more MID_SAVE later: an editor may have been in the middle of saving it."""
        for last in (False, True):
            snap = read_target(target)
            if not snap.exists:
                return None
            try:
                return snap.text, parse_text(target, snap.text)
            except jsonc.JsoncError:
                if last:
                    raise
                await asyncio.sleep(MID_SAVE)
        return None  # not reached: the second pass returns or raises

    def unchanged(self, target: Path, rnd: Round) -> TargetReport | None:
        """The report of `rnd` when planning it would change nothing: every answer is the same as
        the last one planned, of a file and a state that are too (see `rounds.Quiet`); else None.

        Reads only: the daemon asks it outside the target's writer, so a provider whose answer
        did not change does not wait for another provider's write.
        """
        if rnd.report is not None or target not in self._quiet:
            return None
        try:
            layout = self.layout(target)
        except TargetError:
            return None
        if layout.error is not None or layout.layered:
            return None
        return self._unchanged(target, rnd)

    def _unchanged(self, target: Path, rnd: Round) -> TargetReport | None:
        memo = self._quiet.get(target)
        if memo is None:
            return None
        try:
            snap = read_target(target)
        except TargetError:
            return None
        return quiet_report(memo, rnd, file_sha256=snap.sha256, state_id=state_generation(),
                            now=self._clock())

    async def _sync_layered(self, planner: LayeredPlanner, skipped: list[ProviderReport], before: State,
                            *, dry_run: bool, diff_base: str | None) -> TargetReport:
        """The write step when the target's models live in (or move between) several files."""
        path = str(planner.target)
        try:
            if dry_run:
                files = await asyncio.to_thread(preview_layered, planner)
            else:
                files = await asyncio.to_thread(write_layered, planner, state_dir=self._state_dir,
                                                clock=self._clock)
        except TargetParseError as exc:  # the overlay (or the target) no longer parses: left alone
            return await self._invalid_target(TargetReport(path, error=str(exc)))
        except SyncdError as exc:
            return TargetReport(path, error=str(exc), providers=failed_all(list(planner.fetched), exc))
        report = layered_report(planner, files, skipped, before, with_diff=dry_run, diff_base=diff_base)
        if not dry_run:
            self._valid_again(planner.target)
            await self._announce.synced(report, _failures(before, planner.target))
        return report

    # --- revalidation after a change on disk ----------------------------------------------------

    async def revalidate(
        self, changed: Path, known: Mapping[str, frozenset[str]] | None = None
    ) -> TargetReport:
        """Record hand deletions (tombstones) and warn about user-owned IDs the provider does not serve.

        `changed` is a target, or an overlay: then every target whose models it holds. `known`:
        provider id -> unserved IDs the caller has already said (see `revalidate`).
        """
        owners = [t for t in self.targets() if changed in self.layout(t).files] or [changed]
        reports = [await self._revalidate(t, known) for t in owners]
        if len(reports) == 1:
            return reports[0]
        return TargetReport(str(changed), error=next((r.error for r in reports if r.error), None),
                            providers=tuple(p for r in reports for p in r.providers))

    async def _revalidate(
        self, target: Path, known: Mapping[str, frozenset[str]] | None
    ) -> TargetReport:
        path = str(target)
        try:
            from syncd.sync.revalidate import revalidate  # the daemon's alone: `once` never loads it

            # in a thread: it waits for the state lock, which another syncd may hold
            async def run() -> TargetReport:
                return await asyncio.to_thread(revalidate, target, self.settings, self._state_dir,
                                               known)

            try:
                report = await run()
            except jsonc.JsoncError:  # read in the middle of a save? once more
                await asyncio.sleep(MID_SAVE)
                report = await run()
        except jsonc.JsoncError as exc:
            return await self._invalid_target(TargetReport(path, error=f"{path}:{exc}"))
        except TargetParseError as exc:  # its overlay
            return await self._invalid_target(TargetReport(path, error=str(exc)))
        except TargetError as exc:
            return TargetReport(path, error=str(exc))
        self._valid_again(target)
        return report

    # --- local runtimes: the daemon watches their model stores (issue 15) -----------------------

    def local_stores(self, kinds: Mapping[tuple[Path, str], str] | None = None) -> list[LocalStore]:
        """Every provider on this machine, with the folders where its runtime keeps its models.

        `kinds`: (target, provider) -> the kind its last fetch found, where the caller knows it.
        """
        from syncd.sync.local import local_stores

        return local_stores(self.targets(), self.settings, self._cache.kinds, known=kinds or {})

    async def list_fingerprint(self, target: Path, provider_id: str, *, rescan: bool = False) -> str | None:
        """A hash of the IDs the provider lists now (None: it cannot be asked); one cheap request."""
        from syncd.providers.listprobe import list_fingerprint
        from syncd.sync.local import SpecCache

        if self._local_specs is None or self._local_specs.settings is not self.settings:
            self._local_specs = SpecCache(self.settings)
        spec = self._local_specs.get(target, provider_id, paths.opencode_auth_file())
        if spec is None:
            return None
        return await list_fingerprint(spec, await self.http(), self.settings.limits(), rescan=rescan)

    # --- notifications --------------------------------------------------------------------------

    async def _invalid_target(self, report: TargetReport) -> TargetReport:
        """Notify about an invalid target once per distinct error, then leave it alone."""
        return await self._announce.invalid(target_key(report.path), report)

    def _valid_again(self, target: Path) -> None:
        self._announce.valid_again(target_key(target), str(target))

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
            self._quiet.clear()  # enrichment may differ: plan every target in full once
        return self._catalog

    def _sweep(self) -> None:
        """Temp files a killed syncd left in the state dir (a target's own are cleaned, and put
        back when they hold a displaced save, under its lock on its next write)."""
        sweep_stale_temps(self._state_dir)

    async def aclose(self) -> None:
        self._cache_file.save(self._cache)
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _failures(before: State, target: Path) -> dict[str, int]:
    return {pid: ps.failures for pid, ps in before.target(target).providers.items()}
