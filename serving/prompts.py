"""Prompt templates: YAML files shipped inside a package, overridable from config.

A prompt file is a mapping of names to ``str.format`` templates. Each role or loop
keeps its own file beside its code (``agents/prompts/student.yaml``,
``environments/tom/prompts.yaml``); a config section's ``prompts`` replaces some of
them by name. No prompt text lives in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from string import Formatter
from typing import Any

import yaml

from classroom.serving.errors import ConfigError


class PromptError(ConfigError):
    """A prompt template is missing or asks for a field nobody fills."""


class PromptSet:
    """The named templates of one prompt file."""

    def __init__(self, name: str, templates: Mapping[str, str]):
        self.name = name
        self.templates = dict(templates)

    @classmethod
    def load(cls, package: str, filename: str, overrides: Mapping[str, str] | None = None) -> PromptSet:
        """The templates in ``filename`` inside ``package``, with ``overrides`` replacing some.

        An override that names no template of the file is an error: a typo would
        otherwise leave the packaged prompt in use without a word.
        """
        path = resources.files(package).joinpath(filename)
        if not path.is_file():
            raise PromptError(f"no prompt file {filename!r} in {package} ({path})")
        templates = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        unknown = sorted(set(overrides or {}) - set(templates))
        if unknown:
            raise PromptError(f"prompts.{unknown[0]}: no such prompt in {filename} (have: {', '.join(sorted(templates))})")
        templates.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(filename.rsplit("/", 1)[-1].removesuffix(".yaml"), templates)

    def fields(self, name: str) -> set[str]:
        """The ``{fields}`` a template needs."""
        return {f for _, f, _, _ in Formatter().parse(self.get(name)) if f}

    def get(self, name: str) -> str:
        """A template as written (no fields filled)."""
        if name not in self.templates:
            raise PromptError(f"{self.name} prompts have no {name!r} (have: {', '.join(sorted(self.templates))})")
        return self.templates[name]

    def render(self, name: str, **values: Any) -> str:
        """A template with its fields filled; a missing field is an error, not a blank."""
        missing = self.fields(name) - values.keys()
        if missing:
            raise PromptError(f"{self.name} prompt {name!r} needs {sorted(missing)}")
        return self.get(name).format(**values)
