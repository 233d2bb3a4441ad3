"""One parsing style for every `classroom` command: argparse, whose mistakes are one line.

Each command builds its parser with :func:`command_parser`; a wrong flag or a missing
argument raises :class:`UsageError` (the CLI prints it as ``classroom COMMAND: ...`` and
exits 2) instead of argparse's usage block and ``sys.exit``. Config settings stay
``key=value`` positionals, which Hydra's override grammar reads.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from classroom.serving.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a UsageError naming what was wrong."""

    # Whether the command takes `key=value` config settings (said in an unknown-option line).
    takes_settings = False

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            unknown = message.removeprefix("unrecognized arguments: ").split()[0]
            options = sorted({option for action in self._actions for option in action.option_strings if option.startswith("--")})
            settings = "; settings are key=value" if self.takes_settings else ""
            raise UsageError(f"unknown option {unknown} (options: {', '.join(options)}{settings})")
        raise UsageError(f"{message} (usage: {self.format_usage().strip().removeprefix('usage: ')})")

    def parse(self, argv: list[str]) -> argparse.Namespace:
        """``argv`` parsed, options and positionals in any order; an option the command
        does not take is named first (before any argument found missing)."""
        known = {option for action in self._actions for option in action.option_strings}
        # A command with sub-commands (`bench`): its own options come before the sub-command,
        # whose parser reads the rest.
        subcommands = any(isinstance(action, argparse._SubParsersAction) for action in self._actions)
        for arg in argv:
            if arg == "--" or (subcommands and not arg.startswith("-")):
                break
            if arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in known:
                self.error(f"unrecognized arguments: {arg}")
        return self.parse_args(argv) if subcommands else self.parse_intermixed_args(argv)


def command_parser(command: str, description: str, *, settings: bool = False) -> CommandParser:
    """The parser of `classroom COMMAND`; ``settings``: it takes ``key=value`` overrides
    (as its positional ``overrides``)."""
    parser = CommandParser(prog=f"classroom {command}", description=description, allow_abbrev=False)
    parser.takes_settings = settings
    if settings:
        parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config settings (Hydra's override grammar)")
    return parser


__all__ = ["CommandParser", "command_parser"]
