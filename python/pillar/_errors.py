"""Exceptions: one PillarError subclass per pillar_status, carrying pillar's message."""


class PillarError(Exception):
    """A failed pillar call. `status` is the pillar_status code (0 if none)."""

    status = 0

    def __init__(self, message="", status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class ArgumentError(PillarError, ValueError):
    """A bad argument to an API call (PILLAR_ERR_ARGUMENT)."""
    status = 1


class ModelError(PillarError):
    """The model file is corrupt or inconsistent (PILLAR_ERR_MODEL)."""
    status = 2


class InputError(PillarError, ValueError):
    """An input has the wrong name, type or shape (PILLAR_ERR_INPUT)."""
    status = 3


class UnsupportedError(PillarError):
    """A valid model uses an op, type or attribute pillar does not support."""
    status = 4


class OutOfMemoryError(PillarError, MemoryError):
    """An allocation failed (PILLAR_ERR_NOMEM)."""
    status = 5


class PillarIOError(PillarError, OSError):
    """A file could not be read or written (PILLAR_ERR_IO)."""
    status = 6


class InternalError(PillarError):
    """A bug in pillar (PILLAR_ERR_INTERNAL): please report it."""
    status = 7


_BY_STATUS = {c.status: c for c in (ArgumentError, ModelError, InputError, UnsupportedError,
                                    OutOfMemoryError, PillarIOError, InternalError)}


def raise_for_status(status, message):
    cls = _BY_STATUS.get(status, PillarError)
    err = cls(message or "pillar error %d" % status)
    err.status = status
    raise err
