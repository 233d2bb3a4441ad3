"""`classroom sweep`: a grid of episodes, up to ``sweep.max_concurrent`` at once, on one Ray.

Hydra composes every job's config (the grid is Hydra's override grammar, or a sweep
config's ``hydra.sweeper.params``); the jobs then run here, as threads of this process
that share one Ray and one engine pool per model, so concurrent episodes fill the
engines' batches (and share their greedy reply cache: what every job asks alike, such
as the pre-test under each policy, is computed once). Their agents are Ray actors,
spread over the cluster; the sweep folder (this process's) gets every run directory,
``sweep.json`` (the jobs, for ``--resume``), ``results.csv`` and ``results.md``.

Why not one of Hydra's launchers: the basic launcher runs jobs one after another, and
``hydra-ray-launcher`` 1.2.2 requires ``cloudpickle<3`` (Ray 2.60 ships 3.x), runs
each job as a Ray task on any node (its run directory would be written on that node:
no shared filesystem is assumed here) with engines of its own, and bounds nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from classroom.launch.compose import check_overrides, compose_all
from classroom.launch.rundir import RunSummary, write_overrides
from classroom.serving.errors import ConfigError, UsageError

SWEEP_FILE = "sweep.json"
# Run directories of a job's earlier tries (stopped by a fault, or left unfinished by a
# sweep resumed later), set aside as it runs again: kept for the record, out of the
# results tables.
RETRIED = ".retried"
# How long a Ctrl-C'd sweep waits for its running episodes to stop and write their
# summaries (a second Ctrl-C stops waiting).
INTERRUPT_WAIT_S = 60.0


def _split(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split overrides into plain ones and sweeps (key -> its values, as override text)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    plain, sweeps = [], {}
    for parsed, text in zip(OverridesParser.create().parse_overrides(overrides), overrides):
        if parsed.is_sweep_override():
            # Back to override text as Hydra writes it (quoted strings stay quoted).
            sweeps[parsed.get_key_element()] = [Override._get_value_element_as_str(v) for v in parsed.sweep_iterator()]
        else:
            plain.append(text)
    return plain, sweeps


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def sweep_grid(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The sweep's plain overrides and its grid (key -> values): the sweep config's
    `hydra.sweeper.params`, where the command line wins for a key it names (a plain
    override is that key's one value; a comma list, its values)."""
    plain, sweeps = _split(overrides)
    # Only `sweep=` and `hydra.*` decide the params: other keys may exist only once a
    # swept experiment is applied.
    selecting = [o for o in plain if _key(o) == "sweep" or _key(o).startswith("hydra.")]
    params = compose_all([selecting], resolve=False)[0].sweep_params
    given = {_key(o) for o in plain} | set(sweeps)
    grid = dict(sweeps)
    for key, values in params.items():
        if key not in given:
            grid.update(_split([f"{key}={values}"])[1] or {key: [str(values)]})
    return plain, grid


def expand_jobs(overrides: list[str]) -> list[list[str]]:
    """Every job's overrides, in Hydra's order (the grid's last key varies fastest)."""
    plain, grid = sweep_grid(overrides)
    plain = [o for o in plain if not _key(o).startswith("hydra.sweep")]
    return [[*plain, *(f"{key}={value}" for key, value in zip(grid, values))] for values in itertools.product(*grid.values())]


def count_jobs(overrides: list[str]) -> int:
    """How many jobs the sweep will run: the product of its grid's sizes."""
    total = 1
    for values in sweep_grid(overrides)[1].values():
        total *= len(values)
    return total


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of the sweep's first job (checked before any job starts)."""
    plain, grid = sweep_grid(overrides)
    return [*plain, *(f"{key}={values[0]}" for key, values in grid.items())]


def compose_jobs(jobs: list[list[str]]) -> list[dict[str, Any]]:
    """Each job's resolved config (Hydra's global state: composed here, in one thread)."""
    return [composed.config for composed in compose_all(jobs)]


@dataclass(frozen=True)
class SweepJob:
    """One episode of the sweep: its number, overrides and resolved config."""

    num: int
    overrides: tuple[str, ...]
    config: dict[str, Any]

    def run_dir(self, root: Path) -> Path:
        return root / str(self.num)


class SweepProgress:
    """One line per finished job: k/N, its status and scores, and the sweep's ETA."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.started = time.time()
        self._lock = threading.Lock()

    def job_done(self, num: int, summary: RunSummary) -> None:
        with self._lock:
            self.done += 1
            elapsed = time.time() - self.started
            eta = elapsed / self.done * (self.total - self.done)
            scores = "  ".join(f"{k}={v:.2f}" for k, v in list(summary.scores.items())[:4] if v is not None)
            error = f"  {summary.error}" if summary.error else ""
            print(
                f"[sweep] job {self.done}/{self.total} (#{num}) {summary.status}  {scores}{error}  "
                f"elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min",
                flush=True,
            )


def run_job(job: SweepJob, root: Path, shared: Any, max_retries: int, progress: SweepProgress) -> RunSummary:
    """Run one job into its folder; a job stopped by a fault outside the code (a node or
    actor that died, an endpoint down) runs again from its start, up to ``max_retries``
    times, its earlier folder set aside. Never raises: a failure is its summary."""
    from classroom.agents.config_validation import ConfigError
    from classroom.launch.runner import one_line_error, run_episode, stopped_by_fault

    run_dir = job.run_dir(root)
    if run_dir.exists():  # an earlier, unfinished run of this job (`--resume`): it starts again
        _set_aside(run_dir, root, "unfinished")
    summary = RunSummary(status="failed", run_dir=str(run_dir))
    for attempt in range(max_retries + 1):
        write_overrides(run_dir, job.overrides)
        try:
            summary = run_episode(job.config, run_dir, show_progress=False, shared=shared)
            break
        except KeyboardInterrupt:  # relayed by the sweep's Ctrl-C: recorded, not retried
            summary = RunSummary(status="interrupted", run_dir=str(run_dir))  # as run_episode wrote it
            break
        except ConfigError as exc:  # this grid point's values are wrong: no retry helps
            summary = _failed(run_dir, str(exc))
            break
        except Exception as exc:
            if shared.interrupted.is_set():  # stopped by the sweep's Ctrl-C as it started
                summary = _interrupted(run_dir)
                break
            summary = _failed(run_dir, one_line_error(exc))
            if not stopped_by_fault(exc) or attempt == max_retries:
                break
            print(
                f"[sweep] job #{job.num} stopped by a fault ({summary.error}); running it again ({attempt + 1}/{max_retries})",
                flush=True,
            )
            _set_aside(run_dir, root, f"try{attempt + 1}")
    progress.job_done(job.num, summary)
    return summary


def _interrupted(run_dir: Path) -> RunSummary:
    """The summary of a job the sweep's Ctrl-C stopped before its episode played (its
    pools went away under it): interrupted, not failed; `--resume` runs it."""
    from classroom.serving.secrets import redact

    summary = {"status": "interrupted", "run_dir": str(run_dir)}
    with contextlib.suppress(OSError, ValueError):
        summary = {**json.loads((run_dir / "summary.json").read_text()), "status": "interrupted"}
    summary.pop("error", None)
    (run_dir / "summary.json").write_text(json.dumps(redact(summary), indent=2))
    return RunSummary.model_validate(summary)


def _failed(run_dir: Path, error: str) -> RunSummary:
    """The run's summary after a failure (run_episode wrote it, unless the config was
    refused before the run directory was made: then it is written here)."""
    path = run_dir / "summary.json"
    if path.is_file():
        with contextlib.suppress(ValueError):
            return RunSummary.model_validate({**json.loads(path.read_text()), "error": error})
    from classroom.serving.secrets import redact

    summary = {"status": "failed", "error": error, "run_dir": str(run_dir)}
    path.write_text(json.dumps(redact(summary), indent=2))
    return RunSummary.model_validate(summary)


def _set_aside(run_dir: Path, root: Path, why: str) -> None:
    """Move a job's folder out of the way (a run again must not append to its log)."""
    aside = root / RETRIED / f"{run_dir.name}-{why}"
    aside.parent.mkdir(exist_ok=True)
    shutil.rmtree(aside, ignore_errors=True)
    run_dir.rename(aside)


def finished(root: Path, num: int) -> bool:
    """Whether job ``num`` of the sweep in ``root`` completed."""
    path = root / str(num) / "summary.json"
    try:
        return json.loads(path.read_text()).get("status") == "completed"
    except (OSError, ValueError):
        return False


def restore_override_secrets(overrides: list[str]) -> list[str]:
    """Overrides read back from ``sweep.json`` with masked ``runtime_env`` variables
    taken from this process's environment (the same name); raises ValueError naming
    any other masked value, which cannot be resumed blind."""
    from classroom.serving.secrets import MASK, is_secret_key

    restored = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and value == MASK and is_secret_key(key):
            name = key.rsplit(".", 1)[-1]
            if "env_vars" not in key.split(".") or name not in os.environ:
                raise ValueError(f"the sweep's override {key} was masked; set {name} in the environment to resume")
            override = f"{key}={os.environ[name]}"
        restored.append(override)
    return restored


def plan_sweep(resume: Path | None, overrides: list[str]) -> tuple[Path, list[list[str]], list[int]]:
    """The sweep folder, every job's overrides and the numbers of the jobs to run now
    (all of a new sweep; those that did not complete of a resumed one). Raises
    ValueError with a one-line reason."""
    from classroom.serving.secrets import redact

    if resume is not None:
        if overrides:
            raise UsageError("--resume takes the sweep folder only: its jobs are in its sweep.json")
        try:
            saved = json.loads((resume / SWEEP_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{resume} has no readable {SWEEP_FILE} ({type(exc).__name__}): is it a sweep folder?") from None
        jobs = [restore_override_secrets(job) for job in saved["jobs"]]
        return resume, jobs, [n for n in range(len(jobs)) if not finished(resume, n)]
    jobs = expand_jobs(overrides)
    problem = check_overrides(_split(overrides)[0]) or check_overrides(jobs[0])
    if problem:
        raise ConfigError(problem)
    given = [o for o in overrides if o.startswith("hydra.sweep.dir=")]
    if given:
        root = Path(given[-1].split("=", 1)[1])
    else:
        root = Path(os.environ.get("CLASSROOM_RUNS", "runs")) / f"sweep_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    root.mkdir(parents=True, exist_ok=True)
    # The jobs, secrets masked: `--resume` restores runtime_env variables from the environment.
    (root / SWEEP_FILE).write_text(json.dumps({"overrides": redact(overrides), "jobs": redact(jobs), "created_at": time.time()}, indent=2))
    return root, jobs, list(range(len(jobs)))


def run_sweep(root: Path, jobs: list[SweepJob], total: int) -> tuple[list[RunSummary], dict[str, Any]]:
    """Run ``jobs`` (of ``total``) into ``root``, up to ``sweep.max_concurrent`` at once,
    on one Ray and shared engine pools; returns their summaries, in job order, and each
    engine's utilisation over the sweep (from its start)."""
    import ray

    from classroom.agents.config_validation import validate_section
    from classroom.launch.plan import init_ray
    from classroom.launch.pools import SharedPools, kept_engines
    from classroom.launch.settings import ClusterSettings, SweepSettings

    settings = validate_section(SweepSettings, "sweep", jobs[0].config.get("sweep") or {})
    cluster = validate_section(ClusterSettings, "cluster", jobs[0].config["cluster"])
    progress = SweepProgress(len(jobs))
    left = f" (of {total}; the others completed)" if len(jobs) < total else ""
    print(f"[sweep] {len(jobs)} jobs{left} into {root}, up to {settings.max_concurrent} at once", flush=True)
    started_ray = init_ray(cluster)
    kept = kept_engines()  # a process that keeps its engines (keep_engines) lends them
    shared = kept or SharedPools()
    running = ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="classroom-job")
    try:
        futures = [running.submit(run_job, job, root, shared, settings.max_retries, progress) for job in jobs]
        try:
            summaries = [future.result() for future in futures]
        except KeyboardInterrupt:
            # Jobs not started are dropped; the running ones stop as a Ctrl-C stops an
            # episode and write their summaries (interrupted) before Ray goes.
            running.shutdown(wait=False, cancel_futures=True)
            print("[sweep] interrupted: stopping the running jobs", file=sys.stderr, flush=True)
            shared.interrupt(wait_s=INTERRUPT_WAIT_S)
            raise
        engines: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # a dead engine must not cost the results
            engines = shared.utilisation()
        for engine, figures in engines.items():
            print(
                f"[sweep] engine {engine}: busy {figures['busy_fraction']}, mean in flight {figures['mean_in_flight']}, "
                f"{figures['tokens_per_s']} tokens/s over the sweep",
                flush=True,
            )
        return summaries, engines
    finally:
        # On Ctrl-C: jobs not started are dropped; the running ones end when Ray goes.
        running.shutdown(wait=False, cancel_futures=True)
        if shared is not kept:  # kept pools, and the Ray they live in, outlast the sweep
            shared.shutdown()
        if started_ray and shared is not kept:
            ray.shutdown()
