"""The one exception hierarchy of closedloop; adapters translate it.

::

    ClosedloopError                 500  InternalServerException
    ├── ValidationError             400  ValidationException
    ├── NotFoundError               404  ResourceNotFoundException
    ├── ConflictError               409  ConflictException
    │   └── LeaseLostError          409  ConflictException
    ├── LimitExceededError          402  ServiceQuotaExceededException
    ├── AuthenticationError         403  (code chosen per cause, see below)
    ├── PermissionDeniedError       403  AccessDeniedException
    └── StoreError                  500  InternalServerException

Every error carries the HTTP ``status`` and the AWS error code (``aws_code``)
that the A2I runtime uses for it; the SageMaker control-plane adapter renames a
few codes (``ResourceNotFound``, ``ResourceInUse``) as its API model requires.
``AuthenticationError`` carries the code AWS uses for the cause
(``MissingAuthenticationTokenException``, ``InvalidSignatureException``,
``UnrecognizedClientException``, ``IncompleteSignatureException``).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClosedloopError",
    "ConflictError",
    "LeaseLostError",
    "LimitExceededError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreError",
    "ThrottlingError",
    "ValidationError",
]


class ClosedloopError(Exception):
    """Root of every error closedloop raises on purpose."""

    status: int = 500
    aws_code: str = "InternalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ClosedloopError):
    """Input broke a rule; ``field`` names the offending field when known."""

    status = 400
    aws_code = "ValidationException"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(ClosedloopError):
    """A named resource does not exist."""

    status = 404
    aws_code = "ResourceNotFoundException"


class ConflictError(ClosedloopError):
    """The request contradicts the current state of a resource."""

    status = 409
    aws_code = "ConflictException"


class LeaseLostError(ConflictError):
    """A worker acted on a task whose lease expired or was released."""


class LimitExceededError(ClosedloopError):
    """A configured quota would be exceeded."""

    status = 402
    aws_code = "ServiceQuotaExceededException"


class AuthenticationError(ClosedloopError):
    """The caller could not be identified: missing, wrong or stale credentials."""

    status = 403

    def __init__(
        self, message: str, aws_code: str = "InvalidSignatureException"
    ) -> None:
        super().__init__(message)
        self.aws_code = aws_code


class PermissionDeniedError(ClosedloopError):
    """The caller is known but may not do this."""

    status = 403
    aws_code = "AccessDeniedException"


class ThrottlingError(ClosedloopError):
    """More requests than the server will hold at once; retry later."""

    status = 429
    aws_code = "ThrottlingException"


class StoreError(ClosedloopError):
    """The metadata database or the object store failed; the cause is attached."""
