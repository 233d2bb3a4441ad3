"""Secrets never written: API keys, ``runtime_env`` variables and URL credentials.

What is a secret, decided by where it sits, not by what it looks like:
- the value of a key whose name ends in one (``api_key``, ``token``, ``secret``,
  ``password``, ``credentials``; ``max_tokens`` and ``api_key_env``, a variable's name,
  stay);
- every value under an ``env_vars`` mapping (``cluster.runtime_env.env_vars.X``);
- the ``user:password@`` part of a URL.

:func:`redact` copies a config with them replaced by ``***``; :func:`redact_text` does
the same to text (an override ``key=value``, a log line, Hydra's override lists).
The run directory, Hydra's ``.hydra/`` copies, results tables and logs go through them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MASK = "***"

# The whole name or its last word: `hf_token` and `OPENAI_API_KEY` are secrets,
# `max_tokens` and `api_key_env` (a variable's name) are not.
_SECRET_NAME = re.compile(
    r"(^|[_-])(api[_-]?key|apikey|access[_-]?key|secret[_-]?key|token|secret|password|passwd|credentials?)$", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<creds>[^/\s@:'\"]+(?::[^/\s@'\"]*)?)@")
# key=value in override text; the key may carry Hydra's +/++/~ prefixes and dots.
_OVERRIDE = re.compile(r"(?P<key>(?<![\w.])[+~]{0,2}[A-Za-z_][\w.\-/]*)=(?P<value>'[^']*'|\"[^\"]*\"|[^,\s\]]*)")


def is_secret_key(path: str) -> bool:
    """Whether the value at a dotted config path is a secret (see the module)."""
    parts = path.lstrip("+~").split(".")
    if "env_vars" in parts[:-1]:
        return True
    return bool(_SECRET_NAME.search(parts[-1]))


def mask_url(text: str) -> str:
    """URLs with their ``user:password@`` part replaced by ``***@``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def redact_text(text: str) -> str:
    """Text with secret overrides (``key=value``) and URL credentials masked."""

    def override(match: re.Match[str]) -> str:
        return f"{match['key']}={MASK}" if is_secret_key(match["key"]) else match[0]

    return _OVERRIDE.sub(override, mask_url(text))


def redact(value: Any, path: str = "") -> Any:
    """A copy of a config (dicts, lists, strings) with every secret replaced by ``***``."""
    if isinstance(value, dict):
        return {
            k: (MASK if is_secret_key(f"{path}.{k}" if path else str(k)) else redact(v, f"{path}.{k}" if path else str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v, path) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def redacted_paths(value: Any, path: str = "") -> Iterator[str]:
    """The dotted paths of a config whose value is the mask (a config read back from a
    run directory: those secrets must be given again)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from redacted_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from redacted_paths(v, f"{path}[{i}]")
    elif value == MASK:
        yield path


def redact_hydra_folder(folder: Path) -> None:
    """Rewrite Hydra's copies (``config.yaml``, ``hydra.yaml``, ``overrides.yaml``,
    ``multirun.yaml``) in ``folder`` with their secrets masked."""
    import yaml

    for path in [*folder.glob("*.yaml")]:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        clean = redact(data)
        if clean != data:
            path.write_text(yaml.safe_dump(clean, sort_keys=False))


class RedactingLogRecords:
    """A log-record factory that masks secrets in every message before any handler sees
    it (Hydra's launcher logs each job's overrides, warnings may quote a URL)."""

    def __init__(self, factory: Any):
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        if record.args:
            try:
                record.msg, record.args = record.getMessage(), None
            except (TypeError, ValueError):
                return record
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return record


def install_log_redaction() -> None:
    """Mask secrets in every log record of this process (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, RedactingLogRecords):
        logging.setLogRecordFactory(RedactingLogRecords(factory))
