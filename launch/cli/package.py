"""`classroom package OUT_DIR`: classroom's code as one folder, for a Ray job's
runtime_env (the folder is :mod:`classroom.launch.package`'s)."""

from __future__ import annotations

import json
from pathlib import Path

from classroom.launch.package import write_package


def package_main(argv: list[str]) -> int:
    """Entry of `classroom package OUT_DIR`."""
    from classroom.launch.cli.arguments import command_parser

    parser = command_parser("package", "Write classroom's code to OUT_DIR/classroom, for a Ray job's runtime_env (py_modules).")
    parser.add_argument("out", metavar="OUT_DIR", type=Path)
    target = write_package(parser.parse(argv).out)
    print(f"classroom's code in {target}; give it to the job:")
    print(
        f"  ray job submit --runtime-env-json '{json.dumps({'py_modules': [str(target.resolve())]})}' -- python -m classroom.launch.cli run ..."
    )
    return 0
