"""Every module of the installed classroom package, for tests that walk them all."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def classroom_modules() -> list[ModuleType]:
    """Each module under classroom's code folders, imported as the installed package has
    it; ``__main__`` modules (`python -m` entries, which run a command) left out."""
    modules = []
    for sub in ("agents", "environments", "serving", "launch"):
        top = importlib.import_module(f"classroom.{sub}")
        for name in [top.__name__, *(info.name for info in pkgutil.walk_packages(top.__path__, prefix=f"{top.__name__}."))]:
            if not name.endswith(".__main__"):
                modules.append(importlib.import_module(name))
    return modules
