"""closedloop: human review of model predictions and retraining on the corrections."""

from closedloop.engine import Engine, open_engine
from closedloop.errors import (
    AuthenticationError,
    ClosedloopError,
    ConflictError,
    LeaseLostError,
    NotFoundError,
    ValidationError,
)
from closedloop.settings import Settings

__all__ = [
    "AuthenticationError",
    "ClosedloopError",
    "ConflictError",
    "Engine",
    "LeaseLostError",
    "NotFoundError",
    "Settings",
    "ValidationError",
    "__version__",
    "open_engine",
]

__version__ = "0.1.0"
