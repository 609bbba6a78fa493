"""One error hierarchy for the data plane; each protocol adapter maps it exactly once.

The codes are gRPC's canonical codes (as TF Serving uses them); the REST
adapter turns them into TF Serving's HTTP statuses.
"""

from __future__ import annotations


class ServingError(Exception):
    """A request failed in a way the client should be told about."""

    code = "UNKNOWN"
    """gRPC canonical status code name."""
    http_status = 500
    """HTTP status TF Serving's REST API answers with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    """The request is malformed or does not fit the model's signature."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class NotFound(ServingError):
    """No such model or version in this server."""

    code = "NOT_FOUND"
    http_status = 404


class ResourceExhausted(ServingError):
    """Too many requests in flight, or a request too large."""

    code = "RESOURCE_EXHAUSTED"
    http_status = 429


class Unimplemented(ServingError):
    """The model cannot do what was asked (e.g. Classify on a regressor)."""

    code = "UNIMPLEMENTED"
    http_status = 501


class Unavailable(ServingError):
    """The model is still loading, or the server is draining."""

    code = "UNAVAILABLE"
    http_status = 503


class Internal(ServingError):
    """The model raised something we did not anticipate."""

    code = "INTERNAL"
    http_status = 500


def servable_not_found(name: str, version: int | None) -> NotFound:
    """TF Serving's message for a missing servable: ``Specific(m, 3)`` or ``Latest(m)``."""
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return NotFound(f"Servable not found for request: {request}")
