"""The command line's contract: help, version, usage errors and exit codes."""

from __future__ import annotations

import pytest

from syncd import __version__
from syncd.cli.main import EXIT_USAGE, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"syncd {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("once", "run", "status", "doctor", "restore", "add", "service"):
        assert command in out


def test_unknown_flag_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["once", "--bogus"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--bogus" in err
