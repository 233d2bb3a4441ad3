"""`classroom resume RUN_DIR`: continue a killed episode from its last saved state (what a
folder allows is :mod:`classroom.launch.resume`'s)."""

from __future__ import annotations

import sys
from pathlib import Path

from classroom.launch.resume import restore_secrets, resume_error


def resume_main(argv: list[str]) -> int:
    """Entry of `classroom resume RUN_DIR`."""
    from classroom.launch.cli.arguments import command_parser

    parser = command_parser("resume", "Continue a killed episode from its last saved state (loops that save one).")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    run_dir = parser.parse(argv).run_dir
    problem = resume_error(run_dir)
    if problem:
        print(f"classroom resume: {problem}", file=sys.stderr)
        return 2
    import yaml

    from classroom.environments.base import load_loop
    from classroom.launch.runner import print_summary, run_episode

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    problem = restore_secrets(config)
    if problem:
        print(f"classroom resume: {problem}", file=sys.stderr)
        return 2
    try:  # a ConfigError or ResumeError: classroom's main says it
        summary = run_episode(config, run_dir, show_progress=bool(config.get("progress", True)), resume=True)
    except KeyboardInterrupt:
        print(f"interrupted; what ran so far is in {run_dir}", file=sys.stderr)
        return 130
    print_summary(load_loop(str(config["env"]["loop"])), summary)
    return 0
