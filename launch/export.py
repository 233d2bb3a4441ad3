"""`classroom export RUN_DIR OUT`: copy the data a run produced where the user says.

A loop that makes data writes it under ``RUN_DIR/dataset/`` (a ``datasets``-loadable
folder with its card); export copies that folder, so the data outlives the run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from classroom.serving.errors import DataError, UsageError


def export_main(argv: list[str]) -> int:
    if len(argv) != 2 or any(a.startswith("-") for a in argv):
        print("usage: classroom export RUN_DIR OUT", file=sys.stderr)
        return 2
    run_dir, out = Path(argv[0]), Path(argv[1])
    source = run_dir / "dataset"
    if not source.is_dir():
        raise DataError(f"{run_dir} has no dataset/ (its loop wrote no data to export)")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; name a new folder")
    shutil.copytree(source, out, dirs_exist_ok=True)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    print(f"exported {len(files)} files to {out}: {', '.join(files)}")
    return 0
