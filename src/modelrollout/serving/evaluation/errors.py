"""Why an evaluation could not run, with the exit code the command returns."""

from __future__ import annotations

from modelrollout import exitcodes


class EvaluationError(Exception):
    """The evaluation could not run; ``str()`` is the one-line reason printed to stderr."""

    def __init__(self, message: str, exit_code: int = exitcodes.FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def bad_input(message: str) -> EvaluationError:
    """The dataset or the request does not fit: the user must change something."""
    return EvaluationError(message, exitcodes.BAD_INPUT)
