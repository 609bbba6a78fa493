"""``python -m modelrollout`` is the same program as the ``modelrollout`` command."""

from modelrollout.cli import main

raise SystemExit(main())
