"""`syncd doctor`: runs every check of DESIGN §4.10 concurrently and renders them as text or JSON."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from syncd import paths
from syncd.doctor.checks import (
    MIN_CONTEXT,
    Check,
    Proc,
    Status,
    TargetInfo,
    check_auth_ids,
    check_auth_mode,
    check_bearer,
    check_service,
    check_shadowing,
    check_stale_opencode,
    check_target,
    ok,
    one_line,
    opencode_processes,
    read_auth,
)
from syncd.doctor.environment import check_service_env
from syncd.doctor.lookups import NAME, check_models, check_references, check_runtimes, served_ids
from syncd.doctor.writing import check_writing, layouts, overlay_files
from syncd.errors import AuthFailed, BadResponse, FetchError, SettingsError, StateError, SyncdError
from syncd.model import FetchResult, Kind, Limits, ModelKind, ProviderSpec
from syncd.providers.blocks import custom_providers, models_of
from syncd.providers.catalog import BUILTIN_IDS, load_catalog
from syncd.providers.credentials import provider_spec
from syncd.providers.detect import Runtime, probe_runtimes, runtimes_from_env
from syncd.providers.discover import FetchCache, bearer_headers, fetch_models, make_client
from syncd.providers.fetch import redact_url, request_json
from syncd.report import plural
from syncd.service.status import ServiceStatus, manager_environment, service_status
from syncd.settings import Settings, load_settings
from syncd.sync.merged import opencode_files, read_configs
from syncd.sync.records import State
from syncd.sync.state import load_state, state_file
from syncd.sync.targets import resolve_targets

__all__ = ["Check", "Status", "Proc", "run_checks", "format_checks", "to_json", "any_failed"]

LIMITS = Limits(connect=3.0, read=3.0, total=8.0)
_LOCAL_KINDS = (Kind.OLLAMA, Kind.LMSTUDIO, Kind.LLAMACPP)  # their OpenAI API lives under /v1
WIDTH = 80
_REQUEST = re.compile(r"^[A-Z]+ \S+: ")


def _crashed(name: str, exc: BaseException) -> Check:
    return Check(name, Status.FAIL, f"the check crashed: {type(exc).__name__}: {one_line(str(exc))}",
                 "please report this as a syncd bug")


def _guard(name: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """Checks are independent: one that raises becomes a failing Check, never a traceback."""
    try:
        return fn()
    except Exception as exc:
        return [_crashed(name, exc)]


async def _aguard(name: str, coro: Awaitable[list[Check]]) -> list[Check]:
    try:
        return await coro
    except Exception as exc:
        return [_crashed(name, exc)]


# --- one provider, over the network -----------------------------------------------------------


async def _prefix_fix(spec: ProviderSpec, client: httpx.AsyncClient) -> str | None:
    """The baseURL with `/v1` added when `<base>/models` fails but `<base>/v1/models` answers."""
    base = spec.base_url.rstrip("/")
    if base.endswith("/v1"):
        return None
    headers = {**bearer_headers(spec), **{k: v.reveal() for k, v in spec.headers.items()}}
    try:
        await request_json(client, base + "/v1/models", limits=LIMITS, headers=headers,
                           secrets=spec.secrets())
    except AuthFailed:
        return base + "/v1"  # the route exists; it only wants a key
    except FetchError:
        return None
    return base + "/v1"


def _key_fix(pid: str, block: Mapping[str, Any]) -> tuple[str, str]:
    """Why a provider has no key, and how to give it one."""
    raw = block["options"].get("apiKey")
    if isinstance(raw, str) and raw.startswith("{env:") and raw.endswith("}"):
        var = raw[5:-1]
        return f"options.apiKey is {raw} but {var} is not set", f"export {var}=<key> where OpenCode runs"
    return ("no key is set", f'`opencode auth login` (Other, ID `{pid}`) or options.apiKey: '
            f'"{{env:{pid.upper().replace("-", "_")}_API_KEY}}"')


async def _reach(name: str, pid: str, block: Mapping[str, Any], spec: ProviderSpec,
                 client: httpx.AsyncClient) -> tuple[Check, FetchResult | None, FetchCache]:
    # what loaded models served when syncd last saw them (read only: doctor writes no cache)
    cache = FetchCache.read(paths.state_dir())
    url = redact_url(spec.base_url)
    try:
        result = await fetch_models(spec, client, limits=LIMITS, cache=cache)
    except AuthFailed as exc:
        if spec.api_key is None:
            why, fix = _key_fix(pid, block)
            return Check(name, Status.FAIL, f"{url} wants a key (HTTP 401) and {why}", fix), None, cache
        return Check(name, Status.FAIL, f"the key was refused: {one_line(exc.reason)}",
                     "check the key in auth.json or options.apiKey"), None, cache
    except BadResponse as exc:
        fixed = await _prefix_fix(spec, client)
        if fixed:
            return Check(name, Status.FAIL, f"{url} lacks its version prefix: {url}/models fails, "
                         f"{fixed}/models answers", f'set options.baseURL to "{fixed}"'), None, cache
        return Check(name, Status.FAIL, one_line(exc.reason),
                     "check options.baseURL points at the server's OpenAI-style API"), None, cache
    except FetchError as exc:
        # the reason names whichever probe failed first; the user knows the server by its baseURL
        why = _REQUEST.sub("", one_line(exc.reason), count=1)
        return Check(name, Status.FAIL, f"cannot reach {url}: {why}",
                     "start the server, or fix options.baseURL"), None, cache
    base = spec.base_url.rstrip("/")
    if result.kind in _LOCAL_KINDS and not base.endswith("/v1"):
        return Check(name, Status.FAIL, f"{url} lacks its /v1 prefix: OpenCode would call "
                     f"{url}/chat/completions, which {result.kind} does not serve",
                     f'set options.baseURL to "{base}/v1"'), result, cache
    if result.unlisted is not None:
        return Check(name, Status.WARN, f"{url}: {result.unlisted}",
                     f"write the models you use into provider.{pid}.models by hand; syncd will "
                     "neither add nor remove any there"), result, cache
    n = len(served_ids(result))
    return ok(name, f"{url} answers ({result.kind}), {plural(n, 'model')} served"), result, cache


_SERVES = {Kind.OLLAMA: "Ollama serves its own default (4k-256k by VRAM) unless configured",
           Kind.LMSTUDIO: "LM Studio serves the context it loads the model with",
           Kind.LLAMACPP: "llama-server serves its -c/--ctx-size"}
_CONTEXT_FIX = {
    Kind.OLLAMA: f"OLLAMA_CONTEXT_LENGTH={MIN_CONTEXT} ollama serve, or a Modelfile "
                 f"`PARAMETER num_ctx {MIN_CONTEXT}`; `ollama ps` shows what a loaded model serves",
    Kind.LMSTUDIO: f"load it with `lms load MODEL --context-length {MIN_CONTEXT}` (or set the "
                   "context in its load settings); syncd keeps what a loaded model serves",
    Kind.LLAMACPP: f"restart llama-server with `-c {MIN_CONTEXT}` (or more; router mode: per model "
                   "in --models-preset)",
}


def _listing(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def _context_check(pid: str, block: Mapping[str, Any], result: FetchResult) -> Check:
    """The context each local chat model is served with: below 64k tool calls fail; the model's
    maximum written where the server may serve less truncates prompts silently (DESIGN §4.10)."""
    name = f"context {pid}"
    listed = set(models_of(block) or {})
    chat = [m for m in result.models if m.kind in (None, ModelKind.CHAT)]
    chosen = [m for m in chat if m.id in listed] or chat
    low = [f"{m.id} ({m.context})" for m in chosen
           if m.context_served is not False and m.context is not None and m.context < MIN_CONTEXT]
    risky = [f"{m.id} ({m.context} written)" for m in chosen if m.context_served is False]
    if not low and not risky:
        return ok(name, f"{plural(len(chosen), 'model')} served with a context of at least "
                  f"{MIN_CONTEXT}")
    parts = []
    if low:
        parts.append(f"context below {MIN_CONTEXT} (tool calls fail): {_listing(low)}")
    if risky:
        parts.append(f"written with the model's maximum, but {_SERVES[result.kind]} (longer "
                     f"prompts are cut silently): {_listing(risky)}")
    return Check(name, Status.WARN, "; ".join(parts), _CONTEXT_FIX[result.kind])


async def _provider(target: Path, pid: str, block: Mapping[str, Any], auth: Mapping[str, Any],
                    settings: Settings, state: State | None, client: httpx.AsyncClient,
                    served: dict[str, list[str]]) -> list[Check]:
    """Reach one provider and compare what it serves; `served` gets its IDs for later checks."""
    name = f"provider {pid}"
    try:
        spec = provider_spec(pid, block, target, auth, kind=settings.policy(pid).kind)
    except SyncdError as exc:
        return [Check(name, Status.FAIL, one_line(str(exc)), f"fix provider.{pid}.options")]
    if spec is None:
        return [Check(name, Status.FAIL, "options.baseURL resolves to an empty string",
                      f"set provider.{pid}.options.baseURL (is its variable set?)")]
    check, result, cache = await _reach(name, pid, block, spec, client)
    out = [check]
    if result is not None and result.unlisted is None:  # an unlisted provider serves nothing known
        served.setdefault(pid, []).extend(served_ids(result))
        managed = state.provider(target, pid).managed if state is not None else {}
        out.append(check_models(pid, block, result, managed))
        if result.kind in _CONTEXT_FIX:
            out.append(_context_check(pid, block, result))
    return out


# --- all checks -------------------------------------------------------------------------------


def _settings() -> tuple[Settings, Check]:
    try:
        return load_settings(), ok("settings", f"{paths.settings_file()}: valid or absent")
    except SettingsError as exc:
        return Settings(), Check("settings", Status.FAIL, one_line(str(exc)),
                                 "fix that line; doctor used the defaults meanwhile")


def _state() -> tuple[State | None, Check]:
    try:
        return load_state(), ok("state", f"{state_file()}: readable")
    except StateError as exc:
        path = state_file()
        return None, Check("state", Status.FAIL, one_line(str(exc)),
                           f"mv {path} {path}.corrupt (syncd forgets which models it added)")


def _targets(cli_configs: Sequence[str] | None,
             settings: Settings) -> tuple[list[TargetInfo], list[Check]]:
    paths_ = resolve_targets(cli_configs, settings.configs)
    if not paths_:
        return [], [Check("target", Status.WARN, f"no OpenCode config in {paths.opencode_config_dir()}",
                          "run OpenCode once, or `syncd add ID BASE_URL`")]
    infos, checks = [], []
    for path in paths_:
        info, check = check_target(path)
        infos.append(info)
        checks.append(check)
    return infos, checks


def _known(settings: Settings) -> Callable[[str], bool]:
    """OpenCode's own providers: the cached catalog's, else a short built-in list."""
    catalog = load_catalog(settings.catalog, now=0.0, state_dir=paths.state_dir())
    return lambda pid: pid in BUILTIN_IDS or catalog.has_provider(pid)


async def run_checks(
    *,
    cli_configs: Sequence[str] | None = None,
    client: httpx.AsyncClient | None = None,
    now: datetime | None = None,
    processes: Callable[[], Sequence[Proc]] = opencode_processes,
    service: Callable[[], ServiceStatus] = service_status,
    manager_env: Callable[[], Collection[str] | None] = manager_environment,
) -> list[Check]:
    """Every check, in a stable order; `processes`, `service` and `manager_env` are seams for tests."""
    del now  # every check compares recorded times with each other, not with the clock
    settings, settings_check = _settings()
    state, state_check = _state()
    checks = [settings_check, state_check]
    infos: list[TargetInfo] = []

    def targets() -> list[Check]:
        found, out = _targets(cli_configs, settings)
        infos.extend(found)
        return out

    checks += _guard("target", targets)
    found = layouts(infos, settings, state)
    checks += _guard("write", lambda: check_writing(infos, found, state))
    folders = [paths.opencode_config_dir()] + [i.path.parent for i in infos]
    checks += _guard("shadowing", lambda: check_shadowing(folders, overlay_files(found)))
    auth_path = paths.opencode_auth_file()
    auth, auth_error = read_auth(auth_path)
    checks += _guard("auth.json mode", lambda: check_auth_mode(auth_path))
    checks += [auth_error] if auth_error else _guard(
        "auth.json", lambda: check_auth_ids(auth, infos, _known(settings)))
    checks += _guard("bearer", lambda: check_bearer(auth, infos))

    own = client is None
    http = client or make_client(LIMITS)
    served: dict[str, list[str]] = {}
    try:
        jobs = [_aguard(f"provider {pid}",
                        _provider(i.path, pid, block, auth, settings, state, http, served))
                for i in infos for pid, block in custom_providers(i.data).items()
                if settings.policy(pid).enabled]
        probed = runtimes_from_env()
        declined = {url: d.provider for url, d in (state.detected if state else {}).items()
                    if d.declined_at is not None}
        jobs.append(_aguard("runtimes", _runtimes(probed, http, infos, settings, declined)))
        jobs.append(_aguard("service", _service(service, infos, auth, manager_env)))
        results = await asyncio.gather(*jobs)
    finally:
        if own:
            await http.aclose()
    for group in results[:-2]:
        checks += group
    checks += _guard(NAME, lambda: check_references(_configs(infos), served, _known(settings)))
    checks += results[-2]
    checks += _guard("opencode", lambda: [check_stale_opencode(state, processes)])
    checks += results[-1]
    return checks


def _configs(infos: Sequence[TargetInfo]) -> list[tuple[Path, object]]:
    """Every config OpenCode merges, and the targets doctor was given, each once."""
    given = [(i.path, i.data) for i in infos if i.data is not None]
    return given + read_configs(opencode_files(), skip=[i.path for i in infos])


async def _runtimes(probed: Sequence[Runtime], client: httpx.AsyncClient,
                    infos: Sequence[TargetInfo], settings: Settings,
                    declined: Mapping[str, str]) -> list[Check]:
    found = await probe_runtimes(client, probed)
    return check_runtimes(found, _configs(infos), detect=settings.detect, probed=probed,
                          declined=declined)


async def _service(service: Callable[[], ServiceStatus], infos: Sequence[TargetInfo],
                   auth: Mapping[str, Any], manager_env: Callable[[], Collection[str] | None],
                   ) -> list[Check]:
    try:
        status = await asyncio.to_thread(service)
    except SyncdError as exc:  # an unsupported platform
        return [Check("service", Status.WARN, one_line(str(exc)), "")]
    names = await asyncio.to_thread(manager_env) if status.installed else None
    env = check_service_env(infos, auth, status, names, paths.service_env_file())
    return [check_service(status), *env]


# --- output -----------------------------------------------------------------------------------

_NAME_MAX = 18
_LABEL = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL"}


def counts(checks: Sequence[Check]) -> dict[str, int]:
    return {s.value: sum(1 for c in checks if c.status is s) for s in Status}


def _tilde(text: str, home: str) -> str:
    return text.replace(home + "/", "~/") if len(home) > 1 else text


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    # words stay whole so paths and URLs can be copied; only a word longer than a line overflows
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def format_checks(checks: Sequence[Check], width: int = WIDTH) -> str:
    """One aligned row per check (fix on the next line), wrapped to `width`, then the totals."""
    home = str(Path.home())
    name_w = max((len(c.name) for c in checks if len(c.name) <= _NAME_MAX), default=0)
    indent = " " * (4 + 2 + name_w + 2)
    lines: list[str] = []
    for c in checks:
        head = f"{_LABEL[c.status]:<4}  {c.name:<{name_w}}  "
        if len(head) > len(indent):  # a long provider ID: the message goes below it
            lines.append(head.rstrip())
            head = indent
        lines += _wrap(_tilde(c.message, home), width, head, indent)
        if c.fix and c.status is not Status.OK:
            lines += _wrap(_tilde(c.fix, home), width, indent + "fix: ", indent + "     ")
    n = counts(checks)
    lines.append(f"{n['ok']} ok, {plural(n['warn'], 'warning')}, {n['fail']} failed")
    return "\n".join(lines) + "\n"


def to_json(checks: Sequence[Check]) -> str:
    """`{"checks": [{name, status, message, fix}], "summary": {ok, warn, fail}}`."""
    rows = [{**asdict(c), "status": c.status.value} for c in checks]
    return json.dumps({"checks": rows, "summary": counts(checks)}, indent=2, ensure_ascii=False) + "\n"


def any_failed(checks: Sequence[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)
