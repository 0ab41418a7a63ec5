"""The command line's grammar: every command, flag and help text, parsed into a Namespace."""

from __future__ import annotations

import argparse

from syncd import __version__
from syncd.errors import UsageError

_DESCRIPTION = """\
Keep the model lists in OpenCode's config files true to what each provider serves.

syncd asks every custom provider (a provider block with options.baseURL: Ollama,
LM Studio, llama.cpp, vLLM, LiteLLM, OpenRouter, any OpenAI-compatible gateway) which
models it serves, and writes the smallest patch to provider.<id>.models: comments,
order, indentation and line endings stay as they are. Entries you wrote are yours;
syncd only changes the ones it added, and never removes a model because a server
hiccuped.
"""

_EPILOG = """\
exit codes: 0 ok (changed or not), 1 something failed while the rest was done,
2 usage error (a wrong flag or argument, or a settings file syncd cannot read: nothing
was done), 3 internal error, 4 --dry-run --check found drift.

Results go to stdout, diagnostics (errors, notices, warnings) to stderr; with --json,
stdout holds exactly one JSON document, {"error": {...}} when the command failed.

Settings: ~/.config/syncd/config.json5 (or $SYNCD_CONFIG); state: ~/.local/state/syncd
(or $SYNCD_STATE_DIR). Run `syncd COMMAND --help` for each command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("syncd").strip()  # main() adds the `syncd: ` prefix
        raise UsageError(f"{command + ': ' if command else ''}{message} (see `{self.prog} --help`)")


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="an OpenCode config to maintain (repeatable); replaces the default targets "
        "(OpenCode's global config files and $OPENCODE_CONFIG) and the settings' `configs`",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="syncd",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    once = sub.add_parser(
        "once",
        help="sync every provider of every target once, print a summary, exit",
        description="Run one cycle for every provider of every target: fetch the served "
        "models, plan, patch, verify and write; print a summary per provider.",
    )
    _add_target_args(once)
    once.add_argument(
        "--provider", action="append", metavar="ID", help="only this provider (repeatable)"
    )
    once.add_argument(
        "--dry-run", action="store_true", help="print a unified diff per target; write nothing"
    )
    once.add_argument(
        "--check", action="store_true", help="with --dry-run: exit 4 when a target is out of date"
    )
    once.add_argument("--json", action="store_true", help="print the machine-readable result")
    once.add_argument(
        "--no-detect",
        action="store_true",
        help="do not probe this machine for local runtimes (Ollama, LM Studio, llama.cpp); "
        "probing adds a provider block for an unclaimed runtime to the global config, and only "
        "happens when syncd maintains OpenCode's default configs",
    )
    once.add_argument("--no-notify", action="store_true", help="send no notifications this run")

    run = sub.add_parser(
        "run",
        help="the daemon: sync on a schedule and whenever a config changes",
        description="Run as a daemon: one cycle for every provider at start, then on a schedule; "
        "watch the targets, the settings and auth.json and react to edits at once. "
        "SIGHUP reloads the settings, SIGUSR1 syncs everything now, SIGTERM/SIGINT stop cleanly.",
    )
    _add_target_args(run)
    run.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="console lines on a terminal, JSON lines otherwise (default: auto)",
    )
    run.add_argument("-v", "--verbose", action="count", default=0, help="more log (debug)")
    run.add_argument("-q", "--quiet", action="count", default=0, help="less log (warnings only)")
    run.add_argument("--no-detect", action="store_true", help="do not probe for local runtimes")

    status = sub.add_parser(
        "status",
        help="per provider: ok / failing / never reached / disabled, counts, next run",
        description="Show, per provider of every target, its state (ok; failing, since when "
        "and how many times; never reached; disabled), its last success, the models it serves, "
        "the ones syncd manages and the ones you deleted, and its next run while the daemon "
        "runs; then the local runtimes you declined. Works while the daemon runs.",
    )
    status.add_argument("--json", action="store_true", help="print the machine-readable form")
    status.add_argument(
        "--prune", action="store_true",
        help="first forget targets that no longer exist and providers no longer in their file "
        "(their tombstones and ownership records go with them)",
    )

    doctor = sub.add_parser(
        "doctor",
        help="diagnose the problems users hit, with a fix for each",
        description="Check targets, credentials, providers, served models, local context sizes, "
        "a stale OpenCode process and the service; exit 1 when any check fails.",
    )
    _add_target_args(doctor)
    doctor.add_argument("--json", action="store_true", help="print the machine-readable form")

    restore = sub.add_parser(
        "restore",
        help="let syncd add again a model (or a detected provider block) you deleted by hand",
        description="When you delete a model syncd added, syncd remembers it (a tombstone) and "
        "never adds it back. `restore PROVIDER/MODEL` lifts that; the next sync adds it again. "
        "Likewise a provider block syncd added for a local runtime and you deleted stays away; "
        "`restore PROVIDER` lets detection add it again.",
    )
    restore.add_argument("model", metavar="PROVIDER/MODEL | PROVIDER")

    undo = sub.add_parser(
        "undo",
        help="put back the text a config had before syncd's last write to it",
        description="Before each write syncd keeps the previous text of the config in its state "
        "dir (the last 20 per file). `undo` restores the latest backup of FILE (default: the "
        "config syncd wrote last) through the same careful write, and backs up the text it "
        "replaces, so a second `undo` puts it back. syncd then treats the restored file as your "
        "edit: models it had added and the file no longer has are not added again (`syncd "
        "restore PROVIDER/MODEL`).",
    )
    undo.add_argument("file", metavar="FILE", nargs="?", help="the OpenCode config to restore")
    undo.add_argument("--list", action="store_true",
                      help="show the backups (of FILE, or of every config), newest first")

    add = sub.add_parser(
        "add",
        help="write a new custom provider block and sync it at once",
        description="Write provider.ID (npm @ai-sdk/openai-compatible, name, options.baseURL, "
        "models) to a target, probe the URL, and fill its models.",
    )
    add.add_argument("id", metavar="ID", help="provider id: lowercase letters, digits, '-'")
    add.add_argument("base_url", metavar="BASE_URL", help="e.g. http://127.0.0.1:11434/v1")
    add.add_argument("--name", help="display name (default: from the id)")
    add.add_argument(
        "--key-env", metavar="VAR", help='store options.apiKey as "{env:VAR}" (never the key)'
    )
    add.add_argument(
        "--config", metavar="FILE", help="the target to write (default: the global config)"
    )
    add.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")

    service = sub.add_parser(
        "service",
        help="install, remove or inspect the background service (systemd user unit / launchd)",
        description="Install syncd as a systemd user service (Linux) or a launchd agent (macOS).",
    )
    service.add_argument("action", choices=("install", "uninstall", "status"))
    service.add_argument(
        "--dry-run", action="store_true", help="print the file and the commands only"
    )
    env = service.add_mutually_exclusive_group()
    env.add_argument(
        "--env", action="append", metavar="VAR", help="install: record VAR (set in this shell) in "
        "the service's environment file, ~/.config/syncd/env (mode 0600); repeatable. A service "
        "does not see your shell's exports, so a key written as {env:VAR} needs this")
    env.add_argument("--all-env", action="store_true", help="install: record every variable the "
                     "provider blocks read ({env:VAR}) that is set in this shell, without asking")
    env.add_argument("--no-env", action="store_true", help="install: record no variable and do "
                     "not ask (without a flag, install asks on a terminal and records none otherwise)")
    return parser
