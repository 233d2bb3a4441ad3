"""Composing a config: the one place classroom asks Hydra for one.

`classroom run` (and its ``--dry-run`` and ``--cfg``), `classroom sweep` and the
benchmarks compose with Hydra's compose API: a config is composed once, nothing
rewrites ``sys.argv``, and ``classroom run`` makes its run directory itself (from
``hydra.run.dir``) instead of handing the process to ``@hydra.main``. A config that does
not compose (an unknown option or key, bad override syntax, an interpolation that does
not resolve) is one :class:`ConfigError` line naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from classroom.serving.errors import ConfigError

CONFIG_MODULE = "classroom.conf"


@dataclass(frozen=True)
class Composed:
    """One composed config: the overrides it came from, the resolved config (no
    ``hydra`` section), the option chosen in each config group, and Hydra's view of it."""

    overrides: tuple[str, ...]
    config: dict[str, Any]
    choices: dict[str, Any]
    # The run directory `hydra.run.dir` names ($CLASSROOM_RUNS/DATE_ENV_TASK), resolved
    # once (its date is the time of composing).
    run_dir: Path
    # The composed config with its `hydra` section, unresolved (what `--cfg` prints).
    raw: Any

    @property
    def sweep_params(self) -> dict[str, str]:
        """A sweep config's grid (``hydra.sweeper.params``: key -> comma list)."""
        return {str(k): str(v) for k, v in dict(self.raw.hydra.sweeper.params or {}).items()}

    def keys(self, part: Literal["job", "hydra", "all"]) -> list[str]:
        """The top-level keys of ``--cfg PART``: the job's, Hydra's, or both."""
        return {"job": [k for k in self.raw if k != "hydra"], "hydra": ["hydra"], "all": list(self.raw)}[part]

    def yaml(self, part: Literal["job", "hydra", "all"], *, resolve: bool) -> str:
        """The config as ``--cfg PART`` prints it; resolved, with its secrets masked."""
        from omegaconf import OmegaConf

        if not resolve:
            return OmegaConf.to_yaml(OmegaConf.masked_copy(self.raw, self.keys(part)))
        import yaml

        from classroom.serving.secrets import redact

        try:
            values = resolved(self.raw, self.keys(part))
        except Exception as exc:  # OmegaConf's kinds: an interpolation that does not resolve
            raise ConfigError(f"config error: {str(exc).splitlines()[0]}") from None
        return yaml.safe_dump(redact(values), sort_keys=False)


def search_path(config_dir: str | None) -> list[str]:
    """``--config-dir DIR`` as the override compose understands (DIR's YAML files join
    the config groups, beside the shipped ones)."""
    return [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir else []


@contextlib.contextmanager
def _hydra() -> Iterator[None]:
    """Hydra's global state, initialised for classroom's configs while the block lasts."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            yield
    finally:
        GlobalHydra.instance().clear()


def _one_line(exc: Exception) -> ConfigError:
    """Hydra's or OmegaConf's error about a config as one `config error:` line."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        options = list(exc.options or [])
        group = (exc.missing_cfg_file or "").rsplit("/", 1)[0]
        text = str(exc).splitlines()[0]
        if options:
            return ConfigError(f"config error: {text.rstrip('.')} (allowed in {group or 'this group'}: {', '.join(sorted(options))})")
        return ConfigError(f"config error: {text}")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return ConfigError("config error: " + (" ".join(lines[:2]) if lines else type(exc).__name__))


def _compose(overrides: list[str]) -> Any:
    """Hydra's compose of ``overrides``; a loop's schema is stored the first time a
    config asks for it (so composing imports only the loop it selects)."""
    from hydra import compose
    from hydra.errors import MissingConfigException

    from classroom.launch.config_store import register_loop_schema

    while True:
        try:
            return compose(config_name="config", overrides=overrides, return_hydra_config=True)
        except MissingConfigException as exc:
            if not register_loop_schema(exc.missing_cfg_file or ""):
                raise


def resolved(raw: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``keys`` of a composed config, interpolations resolved, as plain values."""
    from omegaconf import OmegaConf

    return {key: OmegaConf.to_container(raw[key], resolve=True) if OmegaConf.is_config(raw[key]) else raw[key] for key in keys}


def compose_all(jobs: Sequence[Sequence[str]], *, resolve: bool = True) -> list[Composed]:
    """Each override list's config, composed in one initialisation of Hydra (its global
    state: call from one thread). ``resolve=False`` leaves interpolations for later
    (``--cfg`` without ``--resolve``). Raises ConfigError for the first that fails."""
    composed = []
    with _hydra():
        for overrides in jobs:
            try:
                raw = _compose(list(overrides))
                config = resolved(raw, [k for k in raw if k != "hydra"]) if resolve else {}
                choices = dict(raw.hydra.runtime.choices)
                run_dir = Path(str(raw.hydra.run.dir))
            except Exception as exc:  # Hydra's and OmegaConf's many kinds: one line each
                raise _one_line(exc) from None
            composed.append(Composed(tuple(overrides), config, choices, run_dir, raw))
    return composed


def compose_one(overrides: Sequence[str], *, resolve: bool = True) -> Composed:
    """The config ``classroom run OVERRIDES`` runs."""
    return compose_all([overrides], resolve=resolve)[0]


def check_overrides(overrides: Sequence[str]) -> str | None:
    """The one-line error composing ``overrides`` gives, or None when they compose."""
    try:
        compose_all([overrides], resolve=False)
    except ConfigError as exc:
        return str(exc)
    return None


__all__ = ["CONFIG_MODULE", "Composed", "check_overrides", "compose_all", "compose_one", "search_path"]
