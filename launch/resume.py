"""`classroom resume RUN_DIR`: continue a killed episode from its last saved state.

The run directory holds the resolved config and, for loops that implement
:class:`~classroom.environments.base.Stateful`, the state they saved; the episode goes
on in the same folder, appending to its event log and metrics.
"""

from __future__ import annotations

import json
from pathlib import Path


def resume_error(run_dir: Path) -> str | None:
    """Why ``run_dir`` cannot be resumed, as far as the folder tells, in one line; None if it may."""
    if not run_dir.is_dir():
        return f"{run_dir} is not a folder"
    if not (run_dir / "config.yaml").is_file():
        return f"{run_dir} has no config.yaml: is it a run directory?"
    summary = run_dir / "summary.json"
    if summary.is_file():
        try:
            status = json.loads(summary.read_text()).get("status")
        except ValueError:
            status = None
        if status == "completed":
            return f"{run_dir} holds a completed episode: nothing to resume"
    return None


def restore_secrets(config: dict) -> str | None:
    """Put back what the run directory masked: a ``runtime_env`` variable comes from this
    process's environment (the same name); anything else cannot be resumed blind. Returns
    why not, in one line, or None."""
    import os

    from classroom.serving.secrets import redacted_paths

    unset, elsewhere = [], []
    for path in redacted_paths(config):
        *parents, name = path.split(".")
        if "env_vars" not in parents:
            elsewhere.append(path)
        elif name in os.environ:
            node = config
            for key in parents:
                node = node[key]
            node[name] = os.environ[name]
        else:
            unset.append(name)
    if elsewhere:
        return f"the run's config held secrets that were masked ({', '.join(elsewhere)}); run it again with keys in variables"
    if unset:
        return f"the run's runtime_env variables were masked; set {', '.join(unset)} in the environment to resume"
    return None
