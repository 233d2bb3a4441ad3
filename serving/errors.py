"""Every error classroom raises on purpose: one base, a few kinds, one exit code each.

A :class:`ClassroomError`'s message is one line that says what was wrong, where (the
config key, file, URL or model) and how to fix it where there is a fix; the CLI prints
it as it is and exits with its kind's code (:func:`exit_code`), so a user never reads a
traceback for an error classroom knew about. The kinds keep the builtin base they had
(``ValueError``, ``RuntimeError``, ``TimeoutError``), so code that caught those still
does. A module's own error is a subclass of its kind (``EventLogError(DataError)``).

This module is in ``serving/``, the bottom layer, so every layer can import it.
"""

from __future__ import annotations


class ClassroomError(Exception):
    """An error classroom raises on purpose; its message is one line."""

    exit_code = 1


class ConfigError(ClassroomError, ValueError):
    """A config value, override or CLI argument that cannot be used; the message names the key."""

    exit_code = 2


class UsageError(ConfigError):
    """A command called the wrong way (arguments missing or extra); the message says how."""


class DataError(ClassroomError, ValueError):
    """A file classroom reads (a run directory, an event log, a dataset, an adapter, a
    prompt file) that is missing or malformed; the message names it."""

    exit_code = 2


class ParseError(ClassroomError, ValueError):
    """Model output that does not parse; loops record it (a ParseFailure) and go on."""


class BackendError(ClassroomError, RuntimeError):
    """A model could not answer or be served (an endpoint down, an engine dead or hung,
    a bad request, an engine that cannot start or be placed)."""


class EpisodeStopped(ClassroomError, RuntimeError):
    """An episode that cannot go on, for a reason its loop states in one line."""


def exit_code(exc: BaseException) -> int | None:
    """The CLI's exit code for ``exc``: its kind's for a ClassroomError, None for anything
    else (a bug: the traceback is shown)."""
    return exc.exit_code if isinstance(exc, ClassroomError) else None


class EngineStartupTimeout(BackendError, TimeoutError):
    """An engine (or its placement group) was not ready in time."""


class EngineUnplaceable(BackendError):
    """No node of the cluster could ever hold an engine as configured."""


class EngineNotAnswering(BackendError):
    """An engine accepted a call and did not answer within ``call_timeout_s``."""


class EngineDead(BackendError):
    """An engine's actor died (its process was killed, or it crashed)."""
