"""`classroom export RUN_DIR OUT`: copy the data a run produced where the user says.

A loop that makes data writes it under ``RUN_DIR/dataset/`` (a ``datasets``-loadable
folder with its card); export copies that folder, so the data outlives the run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from classroom.serving.errors import DataError, UsageError


def export_main(argv: list[str]) -> int:
    """Entry of `classroom export RUN_DIR OUT`."""
    from classroom.launch.cli.arguments import command_parser

    parser = command_parser("export", "Copy the data a run produced (its dataset/) to a new folder.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    parser.add_argument("out", metavar="OUT", type=Path)
    args = parser.parse(argv)
    run_dir, out = args.run_dir, args.out
    source = run_dir / "dataset"
    if not source.is_dir():
        raise DataError(f"{run_dir} has no dataset/ (its loop wrote no data to export)")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; name a new folder")
    shutil.copytree(source, out, dirs_exist_ok=True)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    print(f"exported {len(files)} files to {out}: {', '.join(files)}")
    return 0
