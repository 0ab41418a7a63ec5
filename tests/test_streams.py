"""The smaller promises of issue 13 (item 8), each as the user meets it at the command line: one rule
for streams (results on stdout, diagnostics on stderr, `--json` prints exactly one JSON document),
exit codes per DESIGN §3, clear refusals instead of silence, correct plurals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_kit import block, one_json, opencode_dir, run, write_json
from fakes import FakeProvider

from syncd.sync.render import DEFAULT_OUTPUT_CAP

Factory = Callable[..., FakeProvider]
README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def bad_settings(tmp_path: Path) -> dict[str, str]:
    settings = tmp_path / "settings.json5"
    settings.write_text("{\n  intervall: '1m',\n}\n")
    return {"SYNCD_CONFIG": str(settings)}


def json_error(out: Any) -> dict[str, Any]:
    doc = one_json(out)
    assert set(doc) == {"error"}, doc
    return dict(doc["error"])


# --- --provider, models, run --config, add ---------------------------------------------------------


def test_a_provider_flag_naming_no_provider_is_a_usage_error_and_nothing_runs(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_json(tmp_path / "opencode.json", {"provider": {"ollama": block(fake.base_url)}})
    before = cfg.read_text()
    out = run("once", "--no-notify", "--config", str(cfg), "--provider", "olama")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "olama" in out.stderr and "`ollama`" in out.stderr and out.stdout == ""
    assert cfg.read_text() == before and fake.requests == []


def test_a_models_value_that_is_not_an_object_is_an_error_left_alone(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = tmp_path / "opencode.jsonc"
    text = ('{ "provider": { "box": { "options": { "baseURL": "' + fake.base_url + '" },'
            ' "models": ["qwen3-coder:30b"] } } }\n')
    cfg.write_text(text)
    out = run("once", "--no-notify", "--json", "--config", str(cfg))
    assert out.returncode == 1, out.stderr
    (target,) = one_json(out)["targets"]
    (box,) = target["providers"]
    assert box["status"] == "error" and "`models` is a list, not an object" in box["error"]
    assert "OpenCode refuses" in box["error"] and cfg.read_text() == text


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_run_with_a_config_that_is_missing_or_a_folder_refuses_to_start(
    tmp_path: Path, what: str
) -> None:
    path = tmp_path / ("nope.jsonc" if what == "missing" else "dir")
    if what == "folder":
        path.mkdir()
    out = run("run", "--config", str(path), timeout=30)
    assert out.returncode == 2, out.stderr
    assert str(path) in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_add_refuses_the_id_of_an_opencode_built_in_provider(tmp_path: Path) -> None:
    cfg = write_json(tmp_path / "opencode.json", {})
    out = run("add", "openai", "http://127.0.0.1:9/v1", "--config", str(cfg))
    assert out.returncode == 2 and "OpenCode's own" in out.stderr and "openai-" in out.stderr
    assert json.loads(cfg.read_text()) == {}


def test_add_refuses_an_ollama_url_without_v1_and_names_the_right_one(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_json(tmp_path / "opencode.json", {})
    out = run("add", "box", fake.root, "--config", str(cfg))
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"syncd add box {fake.root}/v1" in out.stderr
    assert json.loads(cfg.read_text()) == {}
    ok = run("add", "box", fake.base_url, "--config", str(cfg))
    assert ok.returncode == 0, ok.stderr


# --- streams and prefixes ----------------------------------------------------------------------------


def test_a_config_that_does_not_parse_is_reported_on_stderr_not_in_the_results(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    good = write_json(tmp_path / "good.json", {"provider": {"box": block(fake.base_url)}})
    broken = tmp_path / "broken.jsonc"
    broken.write_text('{\n  "provider": {\n')
    out = run("once", "--no-notify", "--config", str(good), "--config", str(broken))
    assert out.returncode == 1
    assert f"syncd: {broken}:" in out.stderr and str(broken) not in out.stdout
    assert "box" in out.stdout


def test_no_config_to_maintain_is_said_on_stderr() -> None:
    out = run("once", "--no-notify")
    assert out.returncode == 0 and out.stdout == ""
    assert "no OpenCode config to maintain" in out.stderr


@pytest.mark.parametrize("args", [["once", "--bogus"], ["once", "--provider"], ["bogus"],
                                  ["status", "extra"]])
def test_usage_errors_have_one_syncd_prefix_and_point_at_the_right_help(args: list[str]) -> None:
    out = run(*args)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("syncd: ") and "syncd: syncd" not in line
    command = args[0] if args[0] != "bogus" else None
    assert f"`syncd {command} --help`" in line if command else "`syncd --help`" in line


# --- exit codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["once", "--no-notify"], ["status"], ["undo", "--list"],
                                  ["run"], ["add", "box", "http://127.0.0.1:9/v1"]])
def test_a_bad_settings_file_exits_2_naming_its_line(tmp_path: Path, args: list[str]) -> None:
    out = run(*args, env=bad_settings(tmp_path), timeout=30)
    assert out.returncode == 2, out.stderr
    assert "intervall" in out.stderr and ":2" in out.stderr and out.stdout == ""


def test_doctor_reports_a_bad_settings_file_as_a_failed_check(tmp_path: Path) -> None:
    out = run("doctor", "--json", env=bad_settings(tmp_path))
    assert out.returncode == 1
    (check,) = [c for c in one_json(out)["checks"] if c["name"] == "settings"]
    assert check["status"] == "fail" and "intervall" in check["message"]


# --- --json: exactly one document ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [["once", "--json", "--bogus"], ["status", "--json", "extra"],
                                  ["doctor", "--json", "--nope"]])
def test_json_usage_errors_print_one_json_error_document(args: list[str]) -> None:
    out = run(*args)
    assert out.returncode == 2
    err = json_error(out)
    assert err["exit_code"] == 2 and err["kind"] == "usage" and err["message"]
    assert out.stderr.startswith("syncd: ")


def test_json_with_a_bad_settings_file_prints_one_json_error_document(tmp_path: Path) -> None:
    for command in ("once", "status"):
        out = run(command, "--json", env=bad_settings(tmp_path))
        err = json_error(out)
        assert out.returncode == 2 and err["kind"] == "settings" and "intervall" in err["message"]


def test_json_with_a_corrupt_state_file_prints_one_json_error_document(tmp_path: Path) -> None:
    from syncd import paths

    state = paths.state_dir() / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{ not json")
    out = run("status", "--json")
    err = json_error(out)
    assert out.returncode == 1 and err["kind"] == "state" and str(state) in err["message"]


def test_json_with_a_provider_typo_prints_one_json_error_document(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_json(tmp_path / "opencode.json", {"provider": {"box": block(fake.base_url)}})
    out = run("once", "--json", "--no-notify", "--config", str(cfg), "--provider", "bx")
    assert out.returncode == 2 and "bx" in json_error(out)["message"]


# --- numbers the user reads ---------------------------------------------------------------------------


def test_counts_of_one_are_singular(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    write_json(opencode_dir() / "opencode.json", {"provider": {"box": block(fake.base_url)}})
    text = run("doctor").stdout
    assert "1 custom provider" in text and "(s)" not in text and "1 warnings" not in text


def test_a_healthy_provider_s_time_is_its_own_not_a_hung_neighbour_s(
    fake_provider: Factory, tmp_path: Path
) -> None:
    good, hung = fake_provider("ollama"), fake_provider("openai")
    hung.fault = "hang"
    settings = tmp_path / "settings.json5"
    settings.write_text('{ timeouts: { read: "4s", total: "8s" } }\n')
    cfg = write_json(tmp_path / "opencode.json", {"provider": {
        "good": block(good.base_url), "hung": block(hung.base_url)}})
    out = run("once", "--no-notify", "--json", "--config", str(cfg),
              env={"SYNCD_CONFIG": str(settings)})
    ms = {p["id"]: p["ms"] for t in one_json(out)["targets"] for p in t["providers"]}
    assert ms["hung"] >= 4000  # it waited out its read timeout
    assert ms["good"] < ms["hung"]


def test_readme_documents_the_limit_output_syncd_writes() -> None:
    assert "limit.output" in README
    assert f"{DEFAULT_OUTPUT_CAP}" in README.replace(",", "")
    section = README[README.index("limit.output"):][:600]
    assert "context / 4" in section or "context // 4" in section
    assert "max_tokens" in README  # what OpenCode sends when there is no limit at all
