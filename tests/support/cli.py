"""The `classroom` command for tests: called in this process where the process boundary
is not what a test is about, in a child process where it is (exit codes of the real
interpreter, signals, Ctrl-C, a process's own Ray).

In this process, `classroom run|resume|sweep` joins the test session's Ray when one is
up and, while :func:`classroom.launch.pools.keep_engines` is in force (the integration
tier's), plays on the session's engines: a test pays no Ray or engine start.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from dataclasses import dataclass

# `python -m classroom.launch.cli`: the installed entry point, as a user's shell runs it.
CLASSROOM = [sys.executable, "-m", "classroom.launch.cli"]


@dataclass(frozen=True)
class Ran:
    """What a `classroom` call gave back, in subprocess.CompletedProcess's terms."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environment(env: dict[str, str] | None):
    """``os.environ`` with ``env`` set (a value None removes the name) while the block lasts."""
    saved = {name: os.environ.get(name) for name in env or {}}
    try:
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def classroom(*args: str, env: dict[str, str | None] | None = None) -> Ran:
    """`classroom ARGS` in this process, through the same ``main`` the console script
    calls: its exit code (a ``SystemExit`` as the interpreter would turn it into one),
    stdout and stderr. ``env`` is set for the call alone. What Hydra does to the process
    (logging handlers, its global state, ``sys.argv``) is undone after it."""
    from hydra.core.global_hydra import GlobalHydra

    from classroom.launch.cli import main

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level, argv = root.handlers[:], root.level, sys.argv[:]
    try:
        with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # what the interpreter does with it
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                    code = 1
                else:
                    code = exc.code or 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.argv[:] = argv
        GlobalHydra.instance().clear()
    return Ran(code, out.getvalue(), err.getvalue())


def classroom_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`classroom ARGS` in a child process of its own (``env`` added to this one's)."""
    return subprocess.run([*CLASSROOM, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kwargs)
