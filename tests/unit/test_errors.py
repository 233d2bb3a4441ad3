"""Errors with one base: every exception class classroom defines is a ClassroomError of
some kind, and the CLI turns a kind into its exit code in one place (one line, no
traceback), while an error classroom did not raise on purpose still shows its traceback."""

from __future__ import annotations

import inspect

import pytest
from support.cli import classroom
from support.modules import classroom_modules

from classroom.serving.errors import BackendError, ClassroomError, ConfigError, DataError, EpisodeStopped, ParseError

# Control flow, not an error: grading's time limit unwinds through user-facing code as a
# BaseException so that no `except Exception` swallows it.
NOT_ERRORS = {"classroom.agents.grading._TimeLimit"}


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a classroom module, by dotted name (each module
    imported, as the installed package has it)."""
    found = {}
    for module in classroom_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def test_every_exception_classroom_defines_is_a_classroom_error():
    classes = exception_classes()
    # The modules were walked (a broken walk would pass vacuously).
    assert {"classroom.launch.report.ReportError", "classroom.serving.errors.EngineDead"} <= set(classes)
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, ClassroomError) and name not in NOT_ERRORS)
    assert not outside, f"not a ClassroomError: {outside}"


def test_each_kind_keeps_the_builtin_it_was_and_its_exit_code():
    from classroom.serving.errors import EngineStartupTimeout

    assert issubclass(ConfigError, ValueError) and ConfigError.exit_code == 2
    assert issubclass(DataError, ValueError) and DataError.exit_code == 2
    assert issubclass(BackendError, RuntimeError) and BackendError.exit_code == 1
    assert issubclass(EpisodeStopped, RuntimeError) and EpisodeStopped.exit_code == 1
    assert issubclass(EngineStartupTimeout, TimeoutError) and issubclass(EngineStartupTimeout, BackendError)
    assert issubclass(ParseError, ValueError)


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (DataError("runs/x/events.jsonl: line 3 is not JSON"), 2, "classroom regrade: runs/x/events.jsonl: line 3 is not JSON"),
        (
            BackendError("http://127.0.0.1:9/v1 did not answer after 4 attempts"),
            1,
            "classroom regrade: http://127.0.0.1:9/v1 did not answer",
        ),
        (ConfigError("config error: env.num_problems: must be >= 1"), 2, "config error: env.num_problems: must be >= 1"),
    ],
)
def test_the_cli_turns_a_kind_into_its_exit_code_in_one_line(raised, code, line, monkeypatch):
    import classroom.launch.cli.regrade as regrade

    def fault_double(argv):  # injects the fault: the command raises this error
        raise raised

    monkeypatch.setattr(regrade, "regrade_main", fault_double)
    out = classroom("regrade", "anything")
    assert out.returncode == code and out.stderr.startswith(line) and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_an_error_not_raised_on_purpose_keeps_its_traceback(monkeypatch):
    import classroom.launch.cli.regrade as regrade

    def fault_double(argv):
        raise KeyError("a bug")

    monkeypatch.setattr(regrade, "regrade_main", fault_double)
    with pytest.raises(KeyError):
        classroom("regrade", "anything")


def test_commands_that_meet_a_bad_folder_say_so_through_the_one_mapping(tmp_path):
    """Real calls, no double: each command's own error reaches classroom's main, which
    prints its line and its kind's exit code."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "events.jsonl").write_text('{"kind": "header", "schema_version": 2}\n{not json\n{}\n')
    out = classroom("export", str(tmp_path / "run"), str(tmp_path / "out"))
    assert (
        out.returncode == 2 and out.stderr == f"classroom export: {tmp_path / 'run'} has no dataset/ (its loop wrote no data to export)\n"
    )
    out = classroom("merge", str(tmp_path / "run"), str(tmp_path / "merged"))
    assert out.returncode == 2 and out.stderr.startswith("classroom merge: ") and out.stderr.count("\n") == 1, out.stderr
    out = classroom("regrade", str(tmp_path / "run"))
    assert (
        out.returncode == 2
        and out.stderr
        == f"classroom regrade: {tmp_path / 'run' / 'events.jsonl'}:2: not a message (Invalid JSON: key must be a string at line 1 column 2)\n"
    ), out.stderr
