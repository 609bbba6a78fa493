"""Exit codes shared by every subcommand, so scripts and Kubernetes can tell failures apart."""

OK = 0
"""Done as asked (``evaluate``: the evaluation ran, whatever the verdict)."""
FAILURE = 1
"""The command ran and failed: a load error, an unreachable target, a crashed component."""
USAGE = 2
"""The command line was wrong (argparse uses this code too)."""
MISSING_EXTRA = 3
"""The subcommand's optional dependencies are missing: ``pip install 'modelrollout[...]'``."""
BAD_INPUT = 4
"""The input could not be used: unreadable dataset, bad artifact, wrong checksum, bad config."""
INTERRUPTED = 130
"""Stopped by SIGINT (Ctrl-C), as shells report it."""
