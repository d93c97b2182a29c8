"""Exceptions with one-line, user-facing messages."""

from __future__ import annotations


class FastganError(Exception):
    """Base class: the message is a single line meant for the user."""


class ConfigError(FastganError, ValueError):
    """A configuration key has a bad value (or is unknown).

    ``str(err)`` is one line naming the dotted key and the offending value.
    """

    def __init__(self, key: str, value, message: str):
        self.key = key
        self.value = value
        self.message = message
        shown = key if key.isprintable() else repr(key)[1:-1]
        super().__init__(f"{shown} = {_show(value)}: {message}" if key else message)


class BackendError(FastganError, RuntimeError):
    """A backend was requested that cannot run here (the message says why)."""


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class StorageError(FastganError, OSError):
    """A write failed (disk full, I/O error): nothing under the destination's name was changed (exit 1)."""


class OutputExistsError(FastganError, FileExistsError):
    """An output exists and was not to be replaced (the message names it)."""
