"""Domain errors, named for the condition. Nothing here knows about HTTP or the wire names.

SgtError
├── AuthFailed              credentials missing, wrong or expired; wrong system key
│   └── AuthThrottled       too many failed checks from one address lately: retry later
├── InvalidRequest          the body or one of its fields is malformed, of the wrong type, too large
├── ModelNotFound           the caller has no such model (or may not see it)
├── ModelNameTaken          (owner, app_name, name) already exists
├── UnknownModelType        model_type is not one of the registered types
├── SizeOutOfBounds         in_size / out_size / implied parameter count outside the limits
├── InvalidSamples          `data` or `train_data` has the wrong shape or non-finite numbers
├── ExportNotSupported      no ONNX export: the model is untrained, or its kind has no exporter
└── StorageError            the storage layer failed in a way callers cannot fix
    └── StorageUnavailable  the database is away or busy for now (connection lost, starting up or
                            shutting down, lock timeout, serialization failure): retrying later
                            may succeed
"""


class SgtError(Exception):
    """Root of every error SGT raises on purpose; the message is safe to show a client."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class AuthFailed(SgtError):
    """secret_id or secret_key is missing, wrong or expired."""


class AuthThrottled(AuthFailed):
    """Too many failed authentications from this address lately: retry later."""


class InvalidRequest(SgtError):
    """The request body is malformed."""


class ModelNotFound(SgtError):
    """No such model."""


class ModelNameTaken(SgtError):
    """A model with that name already exists."""


class UnknownModelType(SgtError):
    """Unknown model_type."""


class SizeOutOfBounds(SgtError):
    """A size is outside the configured bounds."""


class InvalidSamples(SgtError):
    """The samples have the wrong shape or contain non-finite numbers."""


class ExportNotSupported(SgtError):
    """The model cannot be exported to ONNX."""


class StorageError(SgtError):
    """The storage layer failed."""


class StorageUnavailable(StorageError):
    """The database is unavailable for now; retrying later may succeed."""
