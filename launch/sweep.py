"""`classroom sweep`: Hydra multirun over any config values, on one shared Ray.

Jobs run one after another in this process; the first job starts Ray and the engines,
the others reuse them (engines keep a greedy reply cache, so what every job asks
alike, such as the pre-test under each policy, is computed once). At the end the
sweep folder gets ``results.csv`` and ``results.md``.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from classroom.launch.app import CONFIG_MODULE, SWEEP_ENV, check_overrides, shutdown_shared

_STARTED = time.time()
_DONE: list[float] = []


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
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    plain, sweeps = _split(overrides)
    # Only `sweep=` and `hydra.*` decide the params: other keys may exist only once a
    # swept experiment is applied.
    selecting = [o for o in plain if _key(o) == "sweep" or _key(o).startswith("hydra.")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            cfg = compose(config_name="config", overrides=selecting, return_hydra_config=True)
        params = dict(cfg.hydra.sweeper.params or {})
    finally:
        GlobalHydra.instance().clear()
    given = {_key(o) for o in plain} | set(sweeps)
    grid = dict(sweeps)
    for key, values in params.items():
        if key not in given:
            grid.update(_split([f"{key}={values}"])[1] or {key: [str(values)]})
    return plain, grid


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


def report_job_done(job_num: int, summary: dict[str, Any] | None) -> None:
    """One progress line per finished job: k/N, its time, and the sweep's ETA."""
    total = int(os.environ.get(SWEEP_ENV, "0")) or 1
    _DONE.append(time.time())
    done = len(_DONE)
    elapsed = time.time() - _STARTED
    eta = elapsed / done * (total - done)
    status = "failed" if summary is None else summary.get("status", "?")
    scores = (
        ""
        if summary is None
        else "  " + "  ".join(f"{k}={v:.2f}" for k, v in list((summary.get("scores") or {}).items())[:4] if isinstance(v, (int, float)))
    )
    print(f"[sweep] job {done}/{total} (#{job_num}) {status}{scores}  elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min", flush=True)


def sweep_main(argv: list[str]) -> int:
    """Entry of `classroom sweep ARGS`."""
    from classroom.launch.app import _hydra_entry
    from classroom.launch.results import write_results

    overrides = [a for a in argv if not a.startswith("-")]
    try:
        plain, job = _split(overrides)[0], first_job(overrides)
    except Exception as exc:
        print(f"config error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    # Hydra composes the plain overrides alone before any sweep value applies (so a key
    # that only a swept experiment brings must come with `experiment=` on the command
    # line), then each job with its values: check both before anything starts.
    problem = check_overrides(plain) or check_overrides(job)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    given = [o for o in overrides if o.startswith("hydra.sweep.dir=")]
    if given:
        root = Path(given[-1].split("=", 1)[1])
    else:
        base = Path(os.environ.get("CLASSROOM_RUNS", "runs"))
        root = base / f"sweep_{datetime.now():%Y-%m-%d_%H-%M-%S}"
        argv = [*argv, f"hydra.sweep.dir={root}"]
    total = count_jobs(overrides)
    os.environ[SWEEP_ENV] = str(total)
    print(f"[sweep] {total} jobs into {root}", flush=True)
    sys.argv = ["classroom sweep", "--multirun", *argv]
    try:
        _hydra_entry()
    finally:
        shutdown_shared()
        os.environ.pop(SWEEP_ENV, None)
    if not root.is_dir():
        print(f"sweep wrote nothing to {root}", file=sys.stderr)
        return 1
    csv_path, md_path, rows = write_results(root)
    print(md_path.read_text().split("## Per run")[0].rstrip())
    print(f"\nresults: {csv_path}\n         {md_path}\nreport:  classroom report {root}")
    return 0 if rows and all(r.get("status") == "completed" for r in rows) else 1
