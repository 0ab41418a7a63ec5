"""`syncd doctor`: each check made to fail and to pass in a crafted temp home, against fake servers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd import jsonc, paths
from syncd.cli.main import main
from syncd.doctor.checks import linux_processes, looks_like_opencode, parse_ps
from syncd.doctor.runner import Check, Proc, Status, any_failed, format_checks, run_checks, to_json
from syncd.service.status import service_status
from syncd.sync.records import ProviderState, State
from syncd.sync.state import save_state
from tests import fakes
from tests.fakes import FakeProvider

fake_provider = fakes.fake_provider

Fake = Callable[..., FakeProvider]


# --- crafting a home --------------------------------------------------------------------------


def block(base_url: str, models: Sequence[str] = (), **options: Any) -> dict[str, Any]:
    return {"npm": "@ai-sdk/openai-compatible", "name": "test",
            "options": {"baseURL": base_url, **options}, "models": {m: {} for m in models}}


def write_config(providers: dict[str, Any], name: str = "opencode.jsonc",
                 folder: Path | None = None, **extra: Any) -> Path:
    folder = folder or paths.opencode_config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    doc = {"$schema": "https://opencode.ai/config.json", **extra}
    if providers:
        doc["provider"] = providers
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def write_auth(entries: dict[str, Any]) -> Path:
    path = paths.opencode_auth_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def doctor(**kw: Any) -> list[Check]:
    kw.setdefault("processes", lambda: [])
    return asyncio.run(run_checks(**kw))


def named(checks: list[Check], name: str) -> list[Check]:
    found = [c for c in checks if c.name == name]
    assert found, f"no `{name}` check in {[c.name for c in checks]}"
    return found


def one(checks: list[Check], name: str) -> Check:
    found = named(checks, name)
    assert len(found) == 1, found
    return found[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- settings, state, targets -----------------------------------------------------------------


def test_bad_settings_fail_with_their_line_and_defaults_still_run_the_rest() -> None:
    settings = paths.settings_file()
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("{\n  interval: '15m',\n  bogus_key: 1,\n}\n")
    checks = doctor()
    check = one(checks, "settings")
    assert check.status is Status.FAIL and ":3" in check.message and "bogus_key" in check.message
    assert one(checks, "target").status is Status.WARN  # the remaining checks still ran


def test_absent_settings_are_fine() -> None:
    assert one(doctor(), "settings").status is Status.OK


def test_corrupt_state_fails_with_a_move_aside_fix() -> None:
    path = paths.state_dir() / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    check = one(doctor(), "state")
    assert check.status is Status.FAIL and f"mv {path}" in check.fix


def test_readable_state_passes() -> None:
    save_state(State())
    assert one(doctor(), "state").status is Status.OK


def test_invalid_jsonc_fails_with_line_and_column() -> None:
    text = '{\n  // my providers\n  "provider": {\n    "x": {"options": {"baseURL": }}\n  }\n}\n'
    path = write_config({})
    path.write_text(text)
    with pytest.raises(jsonc.JsoncError) as parsed:
        jsonc.parse(text)
    check = one(doctor(), "target")
    assert check.status is Status.FAIL
    assert f"{path}:{parsed.value.line}:{parsed.value.col}:" in check.message
    assert f"line {parsed.value.line}, column {parsed.value.col}" in check.fix


def test_valid_target_passes_and_counts_custom_providers(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    path = write_config({"mine": block(fake.base_url), "anthropic": {"options": {}}})
    check = one(doctor(), "target")
    assert check.status is Status.OK and str(path) in check.message and "1 custom" in check.message


def test_a_missing_config_given_on_the_command_line_fails(tmp_path: Path) -> None:
    check = one(doctor(cli_configs=[str(tmp_path / "nope.jsonc")]), "target")
    assert check.status is Status.FAIL and "no such file" in check.message


# --- shadowing --------------------------------------------------------------------------------


def test_jsonc_overriding_json_in_one_folder_fails_naming_the_setting() -> None:
    write_config({"a": block("http://127.0.0.1:9/v1")}, name="opencode.json")
    write_config({"a": block("http://127.0.0.1:8/v1")}, name="opencode.jsonc")
    check = one(doctor(), "shadowing")
    assert check.status is Status.FAIL and "provider.a.options.baseURL" in check.message


def test_both_files_without_conflicts_warn() -> None:
    write_config({}, name="opencode.json", theme="dark")
    write_config({}, name="opencode.jsonc", model="x/y")
    assert one(doctor(), "shadowing").status is Status.WARN


def test_one_config_file_per_folder_passes() -> None:
    write_config({}, name="opencode.jsonc")
    assert one(doctor(), "shadowing").status is Status.OK


# --- auth.json and keys -----------------------------------------------------------------------


def test_auth_key_for_a_misspelt_provider_fails_with_the_likely_id(fake_provider: Fake) -> None:
    write_config({"ollama-box": block(fake_provider("ollama").base_url)})
    write_auth({"ollama-bx": {"type": "api", "key": "k1234"}})
    check = one(doctor(), "auth.json")
    assert check.status is Status.FAIL and "`ollama-box`" in check.message


def test_auth_key_for_an_unknown_provider_warns() -> None:
    write_config({})
    write_auth({"zzz-nothing": {"type": "api", "key": "k1234"}})
    check = one(doctor(), "auth.json")
    assert check.status is Status.WARN and "zzz-nothing" in check.message


def test_auth_keys_for_configured_and_builtin_providers_pass(fake_provider: Fake) -> None:
    write_config({"mine": block(fake_provider("openai").base_url)})
    write_auth({"mine": {"type": "api", "key": "k1234"}, "anthropic": {"type": "api", "key": "k"},
                "github-copilot": {"type": "oauth", "refresh": "r"}})
    assert one(doctor(), "auth.json").status is Status.OK


def test_corrupt_auth_json_fails_with_line_and_column() -> None:
    path = write_auth({})
    path.write_text('{\n  "a": {"type": "api",, "key": "x"}\n}\n')
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(path.read_text())
    check = one(doctor(), "auth.json")
    assert check.status is Status.FAIL
    assert f"{path}:{parsed.value.lineno}:{parsed.value.colno}" in check.message


def test_key_stored_with_bearer_in_auth_json_fails_without_showing_it(fake_provider: Fake) -> None:
    write_config({"mine": block(fake_provider("openai").base_url)})
    write_auth({"mine": {"type": "api", "key": "Bearer sk-secret-123"}})
    checks = named(doctor(), "bearer")
    assert [c.status for c in checks] == [Status.FAIL]
    assert "mine" in checks[0].message and "sk-secret" not in checks[0].message + checks[0].fix


def test_api_key_variable_with_bearer_fails(fake_provider: Fake,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCTOR_TEST_KEY", "Bearer sk-abc")
    write_config({"mine": block(fake_provider("openai").base_url, apiKey="{env:DOCTOR_TEST_KEY}")})
    check = one(doctor(), "bearer")
    assert check.status is Status.FAIL and "options.apiKey" in check.message
    assert "sk-abc" not in check.message


def test_plain_keys_pass_the_bearer_check(fake_provider: Fake) -> None:
    write_config({"mine": block(fake_provider("openai").base_url, apiKey="sk-abc")})
    write_auth({"other": {"type": "api", "key": "sk-def"}})
    assert one(doctor(), "bearer").status is Status.OK


# --- reachability, keys the server wants, the /v1 prefix --------------------------------------


def test_reachable_provider_passes_with_its_model_count(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    write_config({"gw": block(fake.base_url)})
    check = one(doctor(), "provider gw")
    assert check.status is Status.OK and f"{len(fake.models)} models served" in check.message


def test_unreachable_provider_fails_naming_its_base_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    write_config({"gone": block(url)})
    check = one(doctor(), "provider gone")
    assert check.status is Status.FAIL and check.message.startswith(f"cannot reach {url}: ")
    assert "fix options.baseURL" in check.fix


def test_hung_server_is_a_timeout_failure_not_a_hang(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    fake.fault = "hang"
    write_config({"gw": block(fake.base_url)})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "within" in check.message


def test_server_wanting_a_key_that_is_missing_fails_with_login_fix(fake_provider: Fake) -> None:
    fake = fake_provider("openai", api_key="sk-right")
    write_config({"gw": block(fake.base_url)})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "wants a key" in check.message
    assert "opencode auth login" in check.fix and "options.apiKey" in check.fix


def test_api_key_from_an_unset_variable_names_the_variable(fake_provider: Fake,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCTOR_UNSET_KEY", raising=False)
    fake = fake_provider("openai", api_key="sk-right")
    write_config({"gw": block(fake.base_url, apiKey="{env:DOCTOR_UNSET_KEY}")})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "DOCTOR_UNSET_KEY is not set" in check.message


def test_key_in_auth_json_lets_the_provider_pass(fake_provider: Fake) -> None:
    fake = fake_provider("openai", api_key="sk-right")
    write_config({"gw": block(fake.base_url)})
    write_auth({"gw": {"type": "api", "key": "sk-right"}})
    assert one(doctor(), "provider gw").status is Status.OK


def test_wrong_key_fails_as_refused(fake_provider: Fake) -> None:
    fake = fake_provider("openai", api_key="sk-right")
    write_config({"gw": block(fake.base_url, apiKey="sk-wrong")})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "refused" in check.message


def test_openai_base_url_without_v1_fails_with_the_fixed_url(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    write_config({"gw": block(fake.root)})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "prefix" in check.message
    assert f'"{fake.root}/v1"' in check.fix


def test_ollama_base_url_without_v1_fails_although_its_api_answers(fake_provider: Fake) -> None:
    fake = fake_provider("ollama")
    write_config({"ollama": block(fake.root)})
    check = one(doctor(), "provider ollama")
    assert check.status is Status.FAIL and "/chat/completions" in check.message
    assert f'"{fake.root}/v1"' in check.fix


def test_html_answer_without_a_v1_route_fails_without_a_prefix_guess(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    fake.fault = "html"
    write_config({"gw": block(fake.base_url)})
    check = one(doctor(), "provider gw")
    assert check.status is Status.FAIL and "HTML" in check.message and "prefix" not in check.message


# --- served models ----------------------------------------------------------------------------


def test_hand_written_model_not_served_fails_with_closest_ids(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    served = [m["id"] for m in fake.models]
    typo = served[0][:-1] + "9"
    write_config({"gw": block(fake.base_url, models=[typo, served[1]])})
    check = one(doctor(), "models gw")
    assert check.status is Status.FAIL and f"`{typo}`" in check.message
    assert served[0] in check.message and f"`{served[1]}`" not in check.message


def test_served_models_managed_ones_and_upstream_ids_pass(fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    served = [m["id"] for m in fake.models]
    path = write_config({"gw": block(fake.base_url, models=[served[0], "gone-managed"])})
    doc = json.loads(path.read_text())
    doc["provider"]["gw"]["models"]["alias"] = {"id": served[1]}
    path.write_text(json.dumps(doc))
    save_state(State().with_provider(path, "gw", ProviderState(managed={"gone-managed": {}})))
    assert one(doctor(), "models gw").status is Status.OK


# --- Ollama context ---------------------------------------------------------------------------


def test_ollama_models_below_64k_context_warn_with_the_fix(fake_provider: Fake) -> None:
    fake = fake_provider("ollama", models=[
        {"id": "small:8b", "context": 131072, "num_ctx": 8192, "tools": True},
        {"id": "nodefault:7b", "context": 131072, "tools": True},
        {"id": "big:30b", "context": 262144, "num_ctx": 65536, "tools": True}])
    write_config({"ollama": block(fake.base_url, models=["small:8b", "nodefault:7b", "big:30b"])})
    check = one(doctor(), "context ollama")
    assert check.status is Status.WARN
    assert "small:8b (8192)" in check.message and "nodefault:7b (131072 written)" in check.message
    assert "big:30b" not in check.message
    assert "OLLAMA_CONTEXT_LENGTH=65536" in check.fix and "num_ctx 65536" in check.fix


def test_a_maximum_written_where_the_server_may_serve_less_is_named_with_the_fix(
        fake_provider: Fake) -> None:
    fake = fake_provider("ollama", models=[{"id": "qwen3:8b", "context": 262144, "tools": True}])
    write_config({"ollama": block(fake.base_url, models=["qwen3:8b"])})
    check = one(doctor(), "context ollama")
    assert check.status is Status.WARN
    assert "written with the model's maximum" in check.message
    assert "qwen3:8b (262144 written)" in check.message
    assert "cut silently" in check.message and "`ollama ps`" in check.fix


def test_lmstudio_unloaded_model_at_its_maximum_is_a_served_context_risk(fake_provider: Fake) -> None:
    fake = fake_provider("lmstudio", corpus="lmstudio/0.4-v1-loaded")
    write_config({"lmstudio": block(fake.base_url, models=["deepseek-r1"])})
    check = one(doctor(), "context lmstudio")
    assert check.status is Status.WARN and "deepseek-r1 (131072 written)" in check.message
    assert "lms load" in check.fix


def test_a_provider_without_a_model_list_is_explained(fake_provider: Fake) -> None:
    fake = fake_provider("anthropic", corpus="anthropic-compatible/no-model-list")
    write_config({"kimi": {**block(fake.base_url, models=["kimi-k2"], apiKey="sk-x"),
                           "npm": "@ai-sdk/anthropic"}})
    checks = doctor()
    check = one(checks, "provider kimi")
    assert check.status is Status.WARN and "does not list its models" in check.message
    assert "by hand" in check.fix
    assert not [c for c in checks if c.name == "models kimi"]  # nothing served to compare with


def test_ollama_models_with_64k_context_pass(fake_provider: Fake) -> None:
    fake = fake_provider("ollama", models=[
        {"id": "big:30b", "context": 262144, "num_ctx": 65536, "tools": True},
        {"id": "nomic-embed-text:latest", "context": 2048, "embedding": True}])
    write_config({"ollama": block(fake.base_url, models=["big:30b"])})
    assert one(doctor(), "context ollama").status is Status.OK


def test_llamacpp_running_below_64k_context_warns(fake_provider: Fake) -> None:
    fake = fake_provider("llamacpp", models=[{"id": "qwen", "context": 131072, "num_ctx": 8192}])
    write_config({"llamacpp": block(fake.base_url, models=["qwen"])})
    check = one(doctor(), "context llamacpp")
    assert check.status is Status.WARN and "qwen (8192)" in check.message and "-c 65536" in check.fix


def test_llamacpp_running_with_64k_context_passes(fake_provider: Fake) -> None:
    fake = fake_provider("llamacpp", models=[{"id": "qwen", "context": 131072, "num_ctx": 65536}])
    write_config({"llamacpp": block(fake.base_url, models=["qwen"])})
    assert one(doctor(), "context llamacpp").status is Status.OK


# --- a stale OpenCode -------------------------------------------------------------------------


@pytest.fixture
def opencode_child(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real process named `opencode`: a copy of sleep."""
    sleep = shutil.which("sleep")
    if sleep is None or not os.path.isdir("/proc"):
        pytest.skip("needs sleep and /proc")
    binary = tmp_path / "opencode"
    shutil.copy(sleep, binary)
    child = subprocess.Popen([str(binary), "60"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def record_write(at: datetime) -> None:
    target = paths.opencode_config_dir() / "opencode.jsonc"
    if not target.exists():
        write_config({})
    save_state(State().with_write(target, "0" * 64, at))


def test_opencode_started_before_the_last_write_warns(
        opencode_child: subprocess.Popen[bytes]) -> None:
    found = [p for p in linux_processes() if p.pid == opencode_child.pid]
    assert len(found) == 1 and abs(found[0].started.timestamp() - time.time()) < 60
    record_write(datetime.now(UTC) + timedelta(seconds=5))
    check = one(doctor(processes=linux_processes), "opencode")
    assert check.status is Status.WARN and str(opencode_child.pid) in check.message
    assert "restart OpenCode" in check.fix


def test_opencode_started_after_the_last_write_passes(
        opencode_child: subprocess.Popen[bytes]) -> None:
    record_write(datetime.now(UTC) - timedelta(hours=1))
    mine = lambda: [p for p in linux_processes() if p.pid == opencode_child.pid]  # noqa: E731
    assert mine()
    assert one(doctor(processes=mine), "opencode").status is Status.OK


def test_opencode_is_recognised_behind_node_and_by_path() -> None:
    assert looks_like_opencode(["/usr/bin/node", "/usr/lib/node_modules/opencode-ai/bin/opencode"])
    assert looks_like_opencode(["/x/node_modules/opencode-linux-x64/bin/opencode", "run"])
    assert not looks_like_opencode(["/usr/bin/vim", "opencode.json"])
    assert not looks_like_opencode(["python", "-m", "opencode"])


def test_macos_ps_lines_give_opencode_start_times() -> None:
    text = ("  101 Mon Oct  6 12:00:00 2025     /opt/homebrew/bin/opencode\n"
            "  102 Mon Oct  6 12:00:01 2025     /bin/zsh -l\n")
    procs = parse_ps(text)
    expected = datetime(2025, 10, 6, 12, 0, 0).astimezone(UTC)
    assert procs == [Proc(101, expected, "/opt/homebrew/bin/opencode")]


# --- the service ------------------------------------------------------------------------------


def _runner(active: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        verb = argv[2]
        if verb == "is-enabled":
            return subprocess.CompletedProcess(argv, 0, "enabled\n", "")
        return subprocess.CompletedProcess(argv, 0 if active == "active" else 3, f"{active}\n", "")
    return run


def _install_unit() -> None:
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "syncd.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(f"[Service]\nExecStart={shutil.which('sleep')} infinity\n")


def test_service_not_installed_warns_with_install_fix() -> None:
    check = one(doctor(service=lambda: service_status(platform="linux")), "service")
    assert check.status is Status.WARN and check.fix == "syncd service install"


def test_installed_running_service_passes() -> None:
    _install_unit()
    status = lambda: service_status(platform="linux", runner=_runner("active"))  # noqa: E731
    assert one(doctor(service=status), "service").status is Status.OK


def test_installed_but_stopped_service_fails() -> None:
    _install_unit()
    status = lambda: service_status(platform="linux", runner=_runner("failed"))  # noqa: E731
    check = one(doctor(service=status), "service")
    assert check.status is Status.FAIL and "journalctl" in check.fix


# --- robustness and output --------------------------------------------------------------------


def test_a_crashing_check_is_a_failure_and_the_others_still_run(fake_provider: Fake) -> None:
    write_config({"gw": block(fake_provider("openai").base_url)})

    def boom() -> list[Proc]:
        raise RuntimeError("no process table")

    record_write(datetime.now(UTC))
    checks = doctor(processes=boom)
    check = one(checks, "opencode")
    assert check.status is Status.FAIL and "no process table" in check.message
    assert one(checks, "provider gw").status is Status.OK


def test_text_output_fits_80_columns_and_counts_each_status(fake_provider: Fake) -> None:
    fake = fake_provider("openai", api_key="sk-right")
    write_config({"a-provider-with-a-long-name": block(fake.root + "/v1"),
                  "gone": block(f"http://127.0.0.1:{closed_port()}/v1")})
    checks = doctor()
    assert sum(len(c.message) > 60 for c in checks) >= 3  # wrapping is exercised
    text = format_checks(checks)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    n = {s: sum(c.status is s for c in checks) for s in Status}
    warnings = f"{n[Status.WARN]} warning" + ("" if n[Status.WARN] == 1 else "s")
    assert text.splitlines()[-1] == f"{n[Status.OK]} ok, {warnings}, {n[Status.FAIL]} failed"
    assert any_failed(checks) == (n[Status.FAIL] > 0)


def test_json_output_lists_every_check() -> None:
    checks = [Check("a", Status.OK, "fine"), Check("b", Status.FAIL, "broken", "mend it")]
    data = json.loads(to_json(checks))
    assert data["checks"][1] == {"name": "b", "status": "fail", "message": "broken", "fix": "mend it"}
    assert data["summary"] == {"ok": 1, "warn": 0, "fail": 1}


def test_cli_doctor_exits_1_on_a_failing_check(capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config({})
    path.write_text("{ \"provider\": ")
    assert main(["doctor", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    shown = "~/" + str(path.relative_to(Path.home()))  # the text form shortens the home
    assert "FAIL" in out and f"{shown}:1:" in out


def test_cli_doctor_json_without_failures_exits_0(capsys: pytest.CaptureFixture[str],
                                                  fake_provider: Fake) -> None:
    fake = fake_provider("openai")
    write_config({"gw": block(fake.base_url, models=[fake.models[0]["id"]])})
    code = main(["doctor", "--json"])
    data = json.loads(capsys.readouterr().out)
    statuses = {row["name"]: row["status"] for row in data["checks"]}
    assert statuses["provider gw"] == "ok" and statuses["models gw"] == "ok"
    assert code == (1 if data["summary"]["fail"] else 0)
    assert set(data["summary"]) == {"ok", "warn", "fail"}
