"""`classroom run`: Hydra composes the config, then the runtime plays one episode.

The runtime is three modules: :mod:`.plan` (validate and build what needs no Ray;
Ray's start-up), :mod:`.runner` (start the models, play, record, summarise) and
:mod:`.pools` (engine pools shared by a sweep or a notebook). The loop is whatever
``env.loop`` names in the registry (:mod:`classroom.environments.base`): nothing in
``launch/`` knows a loop by name, and it is the same on a laptop and on a cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

from classroom.agents.config_validation import ConfigError
from classroom.environments.base import load_loop
from classroom.launch.runner import one_line_error, print_summary, resume_hint, run_episode, stopped_by_fault
from classroom.serving.errors import EpisodeStopped
from classroom.serving.secrets import redact_hydra_folder

CONFIG_MODULE = "classroom.conf"


def _hydra_entry() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    @hydra.main(config_path="pkg://classroom.conf", config_name="config", version_base=None)
    def _run(cfg: DictConfig) -> None:
        try:
            resolved = OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:
            print(f"config error: {str(exc).splitlines()[0]}", file=sys.stderr)
            sys.exit(2)
        hydra_config = HydraConfig.get()
        run_dir = Path(hydra_config.runtime.output_dir)
        # Hydra has written its copies of the config and overrides: mask their secrets.
        if hydra_config.output_subdir is not None:
            redact_hydra_folder(run_dir / hydra_config.output_subdir)
        try:
            summary = run_episode(resolved, run_dir, show_progress=bool(resolved.get("progress", True)))
        except ConfigError as exc:
            from classroom.launch.experiments import with_experiment_hint

            print(with_experiment_hint(str(exc), hydra_config.runtime.choices), file=sys.stderr)
            sys.exit(2)
        except EpisodeStopped as exc:
            print(f"episode stopped: {exc}; what ran is in {run_dir}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print(f"interrupted; what ran so far is in {run_dir}", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:
            if not stopped_by_fault(exc):
                raise
            # An endpoint that stayed down past its retries, or a process of the run that
            # Ray could not bring back with its state (a student that trains): one line,
            # and how to go on.
            print(f"episode stopped: {one_line_error(exc)}; what ran is in {run_dir} ({resume_hint(resolved, run_dir)})", file=sys.stderr)
            sys.exit(1)
        print_summary(load_loop(str(resolved["env"]["loop"])), summary)

    _run()


def _search_path_overrides(flags: dict[str, str]) -> list[str]:
    """``--config-dir DIR`` as the override a plain compose understands."""
    folder = flags.get("--config-dir") or flags.get("-cd")
    return [f"hydra.searchpath=[file://{Path(folder).resolve()}]"] if folder else []


def check_overrides(overrides: list[str]) -> str | None:
    """Compose once with the overrides; a one-line error for unknown options or keys."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            compose(config_name="config", overrides=overrides)
    except MissingConfigException as exc:
        options = list(getattr(exc, "options", None) or [])
        group = (getattr(exc, "missing_cfg_file", "") or "").rsplit("/", 1)[0]
        text = str(exc).splitlines()[0]
        if options:
            return f"config error: {text.rstrip('.')} (allowed in {group or 'this group'}: {', '.join(sorted(options))})"
        return f"config error: {text}"
    except Exception as exc:  # bad override syntax, unknown key
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return "config error: " + (" ".join(lines[:2]) if lines else type(exc).__name__)
    finally:
        GlobalHydra.instance().clear()
    return None


TAKES_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--info", "-i"}


def split_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Hydra flags (with their values) and plain overrides."""
    flags: dict[str, str] = {}
    overrides: list[str] = []
    pending: str | None = None
    for arg in argv:
        if pending is not None:
            flags[pending] = arg
            pending = None
        elif arg.startswith("-"):
            flags[arg] = ""
            pending = arg if arg in TAKES_VALUE else None
        else:
            overrides.append(arg)
    return flags, overrides


# Hydra's own flags, as `classroom run` passes them on.
HYDRA_FLAGS = TAKES_VALUE | {
    "--help",
    "-h",
    "--hydra-help",
    "--multirun",
    "-m",
    "--resolve",
    "--run",
    "-r",
    "--version",
    "--shell-completion",
    # classroom's own: the plan, checked against this machine, nothing started; each
    # config field with its default and description.
    "--dry-run",
    "--help-config",
    "-sc",
}


def run_main(argv: list[str]) -> int:
    """Entry of `classroom run ARGS`: validate overrides, then hand over to Hydra."""
    flags, overrides = split_args(argv)
    if "--help-config" in flags:
        from classroom.launch.help_config import help_config_main

        return help_config_main(overrides[0] if overrides else None)
    unknown = sorted(flag for flag in flags if flag.split("=", 1)[0] not in HYDRA_FLAGS)
    if unknown:
        print(
            f"classroom run: unknown option {unknown[0]} (options: {', '.join(sorted(f for f in HYDRA_FLAGS if f.startswith('--')))}; settings are key=value)",
            file=sys.stderr,
        )
        return 2
    wants_help_or_multirun = set(flags) & {"--help", "-h", "--hydra-help", "-m", "--multirun"}
    if not wants_help_or_multirun:
        problem = check_overrides([*_search_path_overrides(flags), *overrides])
        if problem:
            print(problem, file=sys.stderr)
            return 2
    if "--dry-run" in flags:
        from classroom.launch.dry_run import run_dry_main

        return run_dry_main([*_search_path_overrides(flags), *overrides])
    sys.argv = ["classroom run", *argv]
    _hydra_entry()
    return 0


__all__ = ["CONFIG_MODULE", "check_overrides", "run_main"]
