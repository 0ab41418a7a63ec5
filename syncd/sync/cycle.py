"""Reading and planning one target: which providers to ask, asking them, and the plan for a text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from syncd import jsonc
from syncd.errors import FetchError, SyncdError
from syncd.model import FetchResult, ProviderSpec
from syncd.providers.blocks import custom_providers
from syncd.providers.catalog import Catalog
from syncd.providers.credentials import load_auth, provider_spec
from syncd.providers.discover import FetchCache, fetch_many
from syncd.report import ProviderReport, Status
from syncd.settings import Settings
from syncd.sync.outcome import Fetched
from syncd.sync.plan import ProviderPlan, plan_provider, protected_models
from syncd.sync.records import State
from syncd.sync.stale import Judgement, judge, settle, settled, undoes, write_record
from syncd.sync.state import load_state
from syncd.sync.store import sha256_bytes
from syncd.sync.writes import LastWrite


def choose(
    blocks: Mapping[str, Mapping[str, Any]], provider_ids: Sequence[str] | None, settings: Settings
) -> tuple[dict[str, Mapping[str, Any]], list[ProviderReport]]:
    """The blocks to sync now, and a skipped report for each one `--provider` or the settings leave out."""
    chosen: dict[str, Mapping[str, Any]] = {}
    skipped: list[ProviderReport] = []
    for pid, block in blocks.items():
        if provider_ids is not None and pid not in provider_ids:
            skipped.append(ProviderReport(pid, Status.SKIPPED))
        elif not settings.policy(pid).enabled:
            skipped.append(ProviderReport(pid, Status.SKIPPED, error="disabled in the settings"))
        else:
            chosen[pid] = block
    return chosen, skipped


async def fetch_blocks(
    target: Path,
    blocks: Mapping[str, Mapping[str, Any]],
    settings: Settings,
    client: httpx.AsyncClient,
    cache: FetchCache,
    catalog: Catalog | None,
) -> list[Fetched]:
    """Ask every chosen provider what it serves; a provider that cannot be asked is a failed Fetched."""
    auth = load_auth()
    out: list[Fetched] = []
    specs: list[ProviderSpec] = []
    for pid, block in blocks.items():
        try:
            spec = provider_spec(pid, block, target, auth, kind=settings.policy(pid).kind)
        except SyncdError as exc:
            out.append(Fetched(pid, FetchError(f"{pid}: {exc}"), 0))
            continue
        if spec is None:  # custom_providers saw a baseURL string: it resolved to ""
            reason = f"{pid}: options.baseURL is empty (is its variable set where syncd runs?)"
            out.append(Fetched(pid, FetchError(reason), 0))
            continue
        specs.append(spec)
    seconds: list[float] = []
    results = await fetch_many(specs, client, limits=settings.limits(), cache=cache, catalog=catalog,
                               seconds=seconds)
    out += [Fetched(s.id, r, int(t * 1000)) for s, r, t in zip(specs, results, seconds, strict=True)]
    return out


def plan_target(
    target: Path,
    doc: Any,
    fetched: Sequence[Fetched],
    state: State,
    settings: Settings,
    catalog: Catalog | None,
    named: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, ProviderPlan]:
    """One plan per fetched provider that is still in `doc` (pure, given the state).

    `named`: provider id -> model IDs the other configs OpenCode merges refer to.
    """
    blocks = custom_providers(doc)
    plans: dict[str, ProviderPlan] = {}
    for f in fetched:
        block = blocks.get(f.pid)
        if block is None:  # the user removed the provider while we were fetching
            continue
        plans[f.pid] = plan_provider(
            current=block.get("models"),
            fetched=f.result if isinstance(f.result, FetchResult) else None,
            state=state.provider(target, f.pid),
            policy=settings.policy(f.pid),
            protected=protected_models(doc, f.pid) | (named or {}).get(f.pid, frozenset()),
            catalog_has_provider=catalog is not None and catalog.has_provider(f.pid),
            block=block,
        )
    return plans


@dataclass
class Planner:
    """Text in, patched text out (None: nothing to do); remembers the plans of the text it saw last.

    The write path may call it more than once: each call plans again from the text on disk and
    the state as it is then. A text that undid syncd's last write (a stale buffer saved over
    it, see `stale`) is planned as if that write had never happened: `judged` says so, and
    `base` must be applied to the state wherever this plan's outcome is recorded.
    """

    target: Path
    fetched: Sequence[Fetched]
    settings: Settings
    catalog: Catalog | None
    named: Mapping[str, frozenset[str]] = field(default_factory=dict)  # see plan_target
    plans: dict[str, ProviderPlan] = field(default_factory=dict)
    judged: Judgement | None = None
    doc: Any = None  # the text it planned from last, parsed
    write: LastWrite | None = None  # what the patched text changes, for the state's record
    parse: Callable[[str], Any] = jsonc.parse  # the daemon passes one that remembers its last text

    def __call__(self, text: str) -> str | None:
        sha = sha256_bytes(text.encode("utf-8"))
        self.doc = doc = self.parse(text)
        loaded = load_state()
        self.judged = judge(doc, sha, settled(loaded, self.target, doc, sha), self.target)
        state, _ = self.base(loaded, text)
        self.plans = plan_target(self.target, doc, self.fetched, state, self.settings,
                                 self.catalog, self.named)
        self.write = write_record(doc, self.plans, state, self.target)
        changes = [
            (("provider", pid, *p), value)
            for pid, plan in self.plans.items()
            for p, value in plan.changes
        ]
        return jsonc.modify_many(text, changes) if changes else None

    def base(self, state: State, text: str) -> tuple[State, bool]:
        """`state` (freshly loaded) as this plan of `text` saw it: settled, then judged; and
        whether that rolled back a write here (it does so once: the first time it is saved)."""
        state = settled(state, self.target, self.doc, sha256_bytes(text.encode("utf-8")))
        if self.judged is None:
            return state, False
        return settle(state, self.target, self.judged), undoes(state, self.target, self.judged)
