"""Entry point for `python -m syncd`."""

from syncd.cli.main import main

raise SystemExit(main())
