"""`classroom run`: compose the config once, make the run directory, play one episode.

The config is composed with Hydra's compose API (:mod:`classroom.launch.compose`), not ``@hydra.main``:
nothing rewrites ``sys.argv``, and the run directory is the one ``hydra.run.dir`` names.
The runtime is :mod:`classroom.launch.plan` (validate and build what needs no Ray;
Ray's start-up), :mod:`classroom.launch.runner` (start the models, play, record,
summarise) and :mod:`classroom.launch.pools` (engine pools shared by a sweep or a
notebook). The loop is whatever ``env.loop`` names in the
registry (:mod:`classroom.environments.base`): nothing in ``launch/`` knows a loop by
name, and it is the same on a laptop and on a cluster.
"""

from __future__ import annotations

import sys

from classroom.launch.cli.arguments import CommandParser, command_parser
from classroom.launch.compose import Composed, compose_one, search_path
from classroom.serving.errors import ConfigError, EpisodeStopped


def run_parser() -> CommandParser:
    parser = command_parser(
        "run",
        "Run one teaching episode: `classroom run env=ENV task=TASK env.KEY=VALUE ...` (a sweep of them is `classroom sweep`).",
        settings=True,
    )
    parser.add_argument(
        "--cfg", "-c", choices=("job", "hydra", "all"), help="print the composed config (the run's keys, Hydra's, or both) and exit"
    )
    parser.add_argument("--resolve", action="store_true", help="with --cfg: interpolations resolved")
    parser.add_argument("--config-dir", "-cd", metavar="DIR", help="a folder of your own config files, added to the config groups")
    parser.add_argument("--dry-run", action="store_true", help="the plan, checked against this machine or cluster; nothing started")
    parser.add_argument(
        "--help-config",
        nargs="?",
        const="",
        metavar="SECTION",
        help="each config field with its default and description (one section, or the list)",
    )
    return parser


def play(composed: Composed) -> int:
    """Run the composed config's episode into its run directory; the exit code."""
    from classroom.environments.base import load_loop
    from classroom.launch.experiments import with_experiment_hint
    from classroom.launch.rundir import write_overrides
    from classroom.launch.runner import one_line_error, print_summary, resume_hint, run_episode, stopped_by_fault

    config, run_dir = composed.config, composed.run_dir
    write_overrides(run_dir, composed.overrides)
    try:
        summary = run_episode(config, run_dir, show_progress=bool(config.get("progress", True)))
    except ConfigError as exc:
        raise ConfigError(with_experiment_hint(str(exc), composed.choices)) from None
    except EpisodeStopped as exc:
        print(f"episode stopped: {exc}; what ran is in {run_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; what ran so far is in {run_dir}", file=sys.stderr)
        return 130
    except Exception as exc:
        if not stopped_by_fault(exc):
            raise
        # An endpoint that stayed down past its retries, or a process of the run that Ray
        # could not bring back with its state (a student that trains): one line, and how
        # to go on.
        print(f"episode stopped: {one_line_error(exc)}; what ran is in {run_dir} ({resume_hint(config, run_dir)})", file=sys.stderr)
        return 1
    print_summary(load_loop(str(config["env"]["loop"])), summary)
    return 0


def run_main(argv: list[str]) -> int:
    """Entry of `classroom run ARGS`."""
    args = run_parser().parse(argv)
    if args.help_config is not None:
        from classroom.launch.help_config import help_config_main

        return help_config_main(args.help_config or None)
    overrides = [*search_path(args.config_dir), *args.overrides]
    if args.cfg:
        print(compose_one(overrides, resolve=False).yaml(args.cfg, resolve=args.resolve), end="")
        return 0
    composed = compose_one(overrides)  # a ConfigError: classroom's main says it
    if args.dry_run:
        from classroom.launch.dry_run import run_dry

        return run_dry(composed)
    return play(composed)


__all__ = ["play", "run_main", "run_parser"]
