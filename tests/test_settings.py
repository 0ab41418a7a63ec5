"""Settings: defaults, the DESIGN example, durations, provider policies, errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd import paths
from syncd.errors import SettingsError
from syncd.model import Kind, ModelKind
from syncd.settings import (
    AliasPolicy,
    ProviderPolicy,
    RemovePolicy,
    Settings,
    WhitelistPolicy,
    find_line,
    load_settings,
    parse_duration,
)

# the example of DESIGN §5.1 (one comment shortened)
EXAMPLE = """\
{
  configs: ["~/.config/opencode/opencode.jsonc"], // default: global files + $OPENCODE_CONFIG
  detect: true,
  interval: "15m", local_interval: "60s",
  remove: "managed", grace: 2,                    // never | managed | all
  kinds: ["chat"], aliases: "dedupe", whitelist: "auto",
  catalog: "auto",                                // OpenCode's cached catalog; or a URL; or "off"
  notify: { desktop: true, webhook: "https://ntfy.sh/my-topic", command: ["notify-me"] },
  providers: {
    ollama:   { interval: "30s", exclude: ["*:latest"] },
    haimaker: { include: ["anthropic/*", "qwen/*"], kind: "openai" },
    work:     { enabled: false },
  },
}
"""


def write(text: str) -> Path:
    path = paths.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(text: str) -> str:
    path = write(text)
    with pytest.raises(SettingsError) as err:
        load_settings()
    msg = str(err.value)
    assert msg.startswith(f"{path}:") and "\n" not in msg
    return msg.removeprefix(f"{path}:")


def test_missing_file_gives_the_defaults() -> None:
    s = load_settings()
    assert s == Settings()
    assert s.configs is None and s.detect and s.grace == 2 and s.remove is RemovePolicy.MANAGED
    assert s.kinds == {ModelKind.CHAT} and s.interval == 900 and s.local_interval == 60


def test_design_example_loads(isolated_home: Path) -> None:
    write(EXAMPLE)
    s = load_settings()
    assert s.configs == (isolated_home / ".config/opencode/opencode.jsonc",)
    assert [(h.url, h.format) for h in s.notify.webhooks] == [("https://ntfy.sh/my-topic", "ntfy")]
    assert s.notify.command == ("notify-me",) and s.notify.desktop
    assert s.policy("ollama").interval == 30 and s.policy("ollama").exclude == ("*:latest",)
    assert s.policy("haimaker").kind is Kind.OPENAI
    assert s.policy("haimaker").include == ("anthropic/*", "qwen/*")
    assert not s.policy("work").enabled


def test_sync_d_config_env_var_picks_the_file(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "elsewhere.json5"
    f.write_text("{grace: 5}")
    monkeypatch.setenv("SYNCD_CONFIG", str(f))
    assert load_settings().grace == 5


def test_provider_overrides_merge_over_globals() -> None:
    write("""{remove: "all", grace: 4, kinds: ["chat", "embedding"], whitelist: "never",
              exclude: ["*:free"],
              providers: {a: {grace: 1, aliases: "keep", remove: "never"}}}""")
    s = load_settings()
    assert s.policy("a") == ProviderPolicy(
        remove=RemovePolicy.NEVER, grace=1, kinds=frozenset({ModelKind.CHAT, ModelKind.EMBEDDING}),
        exclude=("*:free",), aliases=AliasPolicy.KEEP, whitelist=WhitelistPolicy.NEVER)
    assert s.policy("other").remove is RemovePolicy.ALL and s.policy("other").grace == 4
    assert s.policy("other").interval is None


@pytest.mark.parametrize(("text", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("1h", 3600.0), ("1h30m", 5400.0),
    ("250ms", 0.25), (" 2 m ", 120.0), ("45", 45.0),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "15 minutes", "m", "-5s", 0, -1, True, None, "1x"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_timeouts_and_limits_reach_the_fetch_limits() -> None:
    write('{timeouts: {connect: "2s", read: 5, total: "1m"}, max_models: 10, max_body: 4096}')
    limits = load_settings().limits()
    assert (limits.connect, limits.read, limits.total) == (2, 5, 60)
    assert (limits.max_models, limits.max_body) == (10, 4096)


def test_webhook_may_be_one_url_or_a_list() -> None:
    write('{notify: {webhook: ["https://a", "https://b"], desktop: false}}')
    n = load_settings().notify
    assert [h.url for h in n.webhooks] == ["https://a", "https://b"]
    assert not n.desktop and n.command is None


def test_unknown_key_names_its_path_and_line() -> None:
    text = EXAMPLE.replace("work:     { enabled: false }",
                           "work:     { enabled: false, intervall: 3 }")
    msg = error_of(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "intervall" in ln)
    assert msg.startswith(f"{line}: providers.work.intervall: unknown key")


def test_wrong_type_names_its_path_and_line() -> None:
    text = EXAMPLE.replace('ollama:   { interval: "30s"', 'ollama:   { interval: "soon"')
    msg = error_of(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "soon" in ln)
    assert msg.startswith(f"{line}: providers.ollama.interval:")


def test_key_named_like_a_longer_key_is_not_confused() -> None:
    text = '{\n  local_interval: "1m",\n  // interval: "bad" in a comment\n  interval: true,\n}'
    assert error_of(text).startswith("4: interval:")


@pytest.mark.parametrize(("text", "where"), [
    ('{grace: 0}', "grace"),
    ('{remove: "sometimes"}', "remove"),
    ('{kinds: ["chat", "image"]}', "kinds[1]"),
    ('{configs: "~/x.json"}', "configs"),
    ('{catalog: "ftp://x"}', "catalog"),
    ('{detect: "yes"}', "detect"),
    ('{providers: {a: {kind: "bedrock"}}}', "providers.a.kind"),
    ('{notify: {command: [1]}}', "notify.command"),
    ('{timeouts: {conect: 1}}', "timeouts.conect"),
    ('[]', "(top level)"),
])
def test_invalid_values_are_refused(text: str, where: str) -> None:
    assert error_of(text).startswith(f"1: {where}:")


def test_syntax_error_reports_its_line() -> None:
    assert error_of('{\n  grace: 2,\n  remove: ,\n}').startswith("3: ")


def test_duplicate_key_reports_the_second_occurrence() -> None:
    assert error_of('{\n  grace: 2,\n  grace: 3,\n}').startswith("3: ")


def test_find_line_follows_the_path_through_nested_objects() -> None:
    text = '{\n a: {x: 1},\n b: {\n   x: 2,\n }\n}'
    assert find_line(text, ("b", "x")) == 4
    assert find_line(text, ("a", "x")) == 2
