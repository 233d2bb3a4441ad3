"""`classroom report RUN_OR_SWEEP_DIR`: a self-contained report.html (the page is
:mod:`classroom.launch.report`'s)."""

from __future__ import annotations

from classroom.launch.report import write_report


def report_main(argv: list[str]) -> int:
    """Entry of `classroom report RUN_OR_SWEEP_DIR`."""
    from classroom.launch.cli.arguments import command_parser

    parser = command_parser("report", "Write a self-contained report.html for a run or a sweep folder.")
    parser.add_argument("folder", metavar="RUN_OR_SWEEP_DIR")
    path = write_report(parser.parse(argv).folder)  # a ReportError: classroom's main says it
    print(f"report: {path}")
    return 0
