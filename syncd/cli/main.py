"""The command line: parses arguments, calls the engine, prints, and maps errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from syncd import __version__
from syncd.errors import SyncdError, UsageError

if TYPE_CHECKING:
    from syncd.cli.service_env import EnvOutcome
    from syncd.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_DRIFT = 4

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
2 usage error, 3 internal error, 4 --dry-run --check found drift.

Settings: ~/.config/syncd/config.json5 (or $SYNCD_CONFIG); state: ~/.local/state/syncd
(or $SYNCD_STATE_DIR). Run `syncd COMMAND --help` for each command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


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


def _not_implemented(args: argparse.Namespace) -> int:
    raise UsageError(f"`syncd {args.command}` is not implemented yet")


def _out(text: str) -> None:
    """Print to stdout; what came from outside cannot drive the terminal (see _safe)."""
    if text:
        text = _safe(text)
        print(text, end="" if text.endswith("\n") else "\n")


def _err(text: str) -> None:
    print(_safe(text), file=sys.stderr)


def _safe(text: str) -> str:
    """Every unsafe character (syncd.text) as a JSON `\\u` escape: inert in a terminal, and still
    the same JSON for --json (such characters only occur inside JSON strings)."""
    from syncd.text import json_safe

    return json_safe(text)


def _cmd_once(args: argparse.Namespace) -> int:
    import asyncio

    from syncd.cli import summary
    from syncd.cli.oneshot import run_once

    if args.check and not args.dry_run:
        raise UsageError("--check goes with --dry-run: `syncd once --dry-run --check`")
    reports, notes = asyncio.run(
        run_once(
            cli_configs=args.config,
            provider_ids=args.provider,
            dry_run=args.dry_run,
            detect=not args.no_detect,
            notify=not args.no_notify and not args.dry_run,
        )
    )
    if args.json:
        _out(summary.to_json(reports))
    else:
        for note in notes:
            _err(f"syncd: {summary.tilde(note)}")
        _out(summary.format_reports(reports, dry_run=args.dry_run))
    if args.check and any(r.changed for r in reports):
        return EXIT_DRIFT
    return EXIT_FAILED if summary.any_failed(reports) else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syncd import paths
    from syncd.cli import status
    from syncd.daemon import schedule_file
    from syncd.settings import load_settings
    from syncd.sync.overlay import overlay_homes
    from syncd.sync.prune import providers_in, prune_state
    from syncd.sync.state import load_state
    from syncd.sync.targets import resolve_targets

    settings = load_settings()
    pruned = prune_state(paths.state_dir()) if args.prune else None
    state = load_state()
    targets = [*map(Path, state.targets), *resolve_targets(None, settings.configs)]
    rows = status.status_rows(state, providers_in(targets),
                              lambda pid: settings.policy(pid).enabled,
                              schedule_file.read(paths.state_dir()), overlay_homes(state))
    render = status.status_json if args.json else status.format_status
    _out(render(rows, state, pruned))
    return EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    from syncd.cli.oneshot import restore_model

    _out(restore_model(args.model))
    return EXIT_OK


def _cmd_add(args: argparse.Namespace) -> int:
    import asyncio

    from syncd.cli import summary
    from syncd.cli.oneshot import add_provider

    report = asyncio.run(
        add_provider(args.id, args.base_url, name=args.name, key_env=args.key_env,
                     config=args.config, dry_run=args.dry_run)
    )
    _out(summary.format_reports([report], dry_run=args.dry_run))
    return EXIT_FAILED if summary.any_failed([report]) else EXIT_OK


def _cmd_service(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from syncd.service import install as service
    from syncd.service.status import format_status, service_status

    if args.action != "install" and (args.env or args.all_env or args.no_env):
        raise UsageError("--env, --all-env and --no-env go with `syncd service install`")
    if args.action == "status":
        _out(format_status(service_status(), now=datetime.now(UTC)))
        return EXIT_OK
    if args.action == "install":
        env = _service_env(args)
        plan = service.plan_install(env_changed=env.changed and not args.dry_run)
    else:
        plan = service.plan_uninstall()
    if args.dry_run:
        _out(service.format_plan(plan))
        return EXIT_OK
    outcome = service.apply(plan)
    _out(service.format_outcome(outcome))
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _service_env(args: argparse.Namespace) -> EnvOutcome:
    """Record the variables the provider blocks read for the service; prints what it did."""
    from syncd.cli.service_env import install_env

    outcome = install_env(args.env, every=args.all_env, none=args.no_env, dry_run=args.dry_run,
                          interactive=sys.stdin.isatty())
    for line in outcome.lines:
        (_err if line.startswith("warning:") else _out)(line)
    return outcome


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from syncd import paths
    from syncd.cli.service_env import load_recorded_env
    from syncd.daemon.run import run_daemon
    from syncd.engine import Engine
    from syncd.logs import configure_logging
    from syncd.notify.sinks import Notifier
    from syncd.settings import load_settings

    configure_logging(args.log_format, args.verbose - args.quiet, sys.stderr)
    load_recorded_env()
    settings = load_settings()
    if settings.detect and not args.no_detect and not args.config and not settings.configs:
        asyncio.run(_detect_before_run(settings))
    notifier = Notifier(settings.notify)
    engine = Engine(settings, cli_configs=args.config, notify=notifier.submit)
    code = run_daemon(engine, state_dir=paths.state_dir(), force_polling=settings.force_polling)
    return EXIT_FAILED if code else EXIT_OK


async def _detect_before_run(settings: Settings) -> None:
    """Probe local runtimes once, with a client of its own (it lives in this event loop)."""
    from datetime import UTC, datetime

    import structlog

    from syncd import paths
    from syncd.providers.discover import make_client
    from syncd.sync.detected import detect_runtimes

    client = make_client(settings.limits())
    try:
        found = await detect_runtimes(client, dry_run=False, state_dir=paths.state_dir(),
                                      now=datetime.now(UTC))
    finally:
        await client.aclose()
    for note in found.notes:
        structlog.get_logger("syncd").info("detect", note=note)


def _cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from syncd.doctor import runner as doctor

    checks = asyncio.run(doctor.run_checks(cli_configs=args.config))
    _out(doctor.to_json(checks) if args.json else doctor.format_checks(checks))
    return EXIT_FAILED if doctor.any_failed(checks) else EXIT_OK


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "doctor": _cmd_doctor,
    "run": _cmd_run,
    "once": _cmd_once,
    "status": _cmd_status,
    "restore": _cmd_restore,
    "add": _cmd_add,
    "service": _cmd_service,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return HANDLERS.get(args.command, _not_implemented)(args)
    except UsageError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one boundary where the unexpected becomes exit 3
        print(
            f"syncd: internal error: {type(exc).__name__}: {exc}. "
            "Please report it; nothing half-written was left behind.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
