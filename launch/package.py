"""`classroom package OUT_DIR`: classroom's code as one folder, for a Ray job's runtime_env.

A cluster's nodes share no filesystem and may not have classroom installed. Ray ships a
local folder named in ``runtime_env.py_modules`` to every node (through its object
store, once per content hash) and puts it on the import path of the job's driver and
actors. This writes that folder: the code this installation imports (``classroom/``
with its configs and prompts), nothing else; the image provides the dependencies
(ray, vllm, torch ...).

Why not the wheel itself in ``py_modules``: Ray installs a ``.whl`` there with pip,
dependencies included (720 MB on each node for classroom), and on a 3-node cluster on
one machine workers started while that install was under way failed to import
``yaml.scanner``.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

# The namespace's packages (pyproject's package-dir): each a folder with its subpackages.
PACKAGES = ("agents", "environments", "serving", "launch", "conf")


def write_package(out_dir: Path) -> Path:
    """Copy every classroom package into ``out_dir/classroom``; returns that folder."""
    target = out_dir / "classroom"
    if target.exists():
        shutil.rmtree(target)
    for name in PACKAGES:
        source = Path(importlib.import_module(f"classroom.{name}").__path__[0])
        shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "runs", "outputs"))
    return target
