"""Ports on 127.0.0.1 for tests that need one where nothing listens."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A port nothing listens on (bound, then closed again when the block ends)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
