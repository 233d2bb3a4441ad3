"""Prompt templates: YAML files beside this module, overridable from config.

A template is a mapping of names to ``str.format`` strings; a role takes its
templates from ``prompts/<role>.yaml`` unless its config gives its own.
"""

from __future__ import annotations

from importlib import resources
from string import Formatter
from typing import Any, Mapping

import yaml


class PromptError(ValueError):
    """A prompt template is missing or asks for a field nobody fills."""


class PromptSet:
    """Named templates of one role."""

    def __init__(self, role: str, templates: Mapping[str, str]):
        self.role = role
        self.templates = dict(templates)

    @classmethod
    def load(cls, role: str, overrides: Mapping[str, str] | None = None) -> "PromptSet":
        """The packaged templates of ``role``, with ``overrides`` replacing some."""
        path = resources.files("classroom.agents") / "prompts" / f"{role}.yaml"
        if not path.is_file():
            raise PromptError(f"no prompt file for role {role!r} ({path})")
        templates = yaml.safe_load(path.read_text()) or {}
        templates.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(role, templates)

    def fields(self, name: str) -> set[str]:
        return {f for _, f, _, _ in Formatter().parse(self.get(name)) if f}

    def get(self, name: str) -> str:
        if name not in self.templates:
            raise PromptError(f"{self.role} prompts have no {name!r} (have: {', '.join(sorted(self.templates))})")
        return self.templates[name]

    def render(self, name: str, **values: Any) -> str:
        missing = self.fields(name) - values.keys()
        if missing:
            raise PromptError(f"{self.role} prompt {name!r} needs {sorted(missing)}")
        return self.get(name).format(**values)
