"""The command line: parses arguments, calls the engine, prints, and maps errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from syncd.cli.boundary import EXIT_DRIFT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, report, wants_json
from syncd.cli.parser import build_parser
from syncd.errors import UsageError

if TYPE_CHECKING:
    from syncd.cli.service_env import EnvOutcome
    from syncd.settings import Settings

__all__ = ["EXIT_DRIFT", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


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
        for line in [*map(summary.tilde, notes), *summary.errors(reports)]:
            _err(f"syncd: {line}")
        _out(summary.format_reports(reports, dry_run=args.dry_run))
    if args.check and any(r.changed for r in reports):
        return EXIT_DRIFT
    return EXIT_FAILED if summary.any_failed(reports) else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from syncd.cli.status import run_status

    _out(run_status(as_json=args.json, prune=args.prune))
    return EXIT_OK


def _cmd_undo(args: argparse.Namespace) -> int:
    from syncd.cli.undo import list_backups, run_undo

    _out(list_backups(args.file) if args.list else run_undo(args.file))
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
    for line in summary.errors([report]):
        _err(f"syncd: {line}")
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

    _check_run_configs(args.config or [])
    configure_logging(args.log_format, args.verbose - args.quiet, sys.stderr)
    load_recorded_env()
    settings = load_settings()
    if settings.detect and not args.no_detect and not args.config and not settings.configs:
        asyncio.run(_detect_before_run(settings))
    notifier = Notifier(settings.notify)
    engine = Engine(settings, cli_configs=args.config, notify=notifier.submit)
    code = run_daemon(engine, state_dir=paths.state_dir(), force_polling=settings.force_polling)
    return EXIT_FAILED if code else EXIT_OK


def _check_run_configs(configs: Sequence[str]) -> None:
    """A daemon given a config it cannot watch would run for ever doing nothing: refuse it."""
    from pathlib import Path

    from syncd.localfile import describe

    for raw in configs:
        path = Path(raw).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = None
        if mode is not None and not path.is_file():  # a folder, a named pipe, a device
            raise UsageError(f"run: --config {raw} is {describe(mode)}, not an OpenCode config file")
        if not path.is_file():
            raise UsageError(f"run: --config {raw}: no such file; create it first (e.g. "
                             f"`syncd add ID BASE_URL --config {raw}`), or fix the path")


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
    "undo": _cmd_undo,
}


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(raw)
        if extra:
            command = f"syncd {args.command}" if args.command else "syncd"
            where = f"{args.command}: " if args.command else ""
            raise UsageError(f"{where}unrecognized arguments: {' '.join(extra)} "
                             f"(see `{command} --help`)")
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return HANDLERS.get(args.command, _not_implemented)(args)
    except (Exception, KeyboardInterrupt) as exc:  # the one boundary: errors become exit codes
        return report(exc, as_json=wants_json(raw), out=_out, err=_err)
