"""The one transport: a role's method is written once, in the role, and called through
``Agent.call`` (issue #27); the actor path runs in every integration test's episode."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from classroom.agents.transport import Agent

REPO = Path(__file__).resolve().parents[2]


class Role:
    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple, dict]] = []

    async def answer(self, question: str, *, loud: bool = False) -> str:
        self.asked.append(("answer", (question,), {"loud": loud}))
        return question.upper() if loud else question

    def count(self) -> int:
        return len(self.asked)


class Louder(Role):
    async def answer(self, question: str, *, loud: bool = False) -> str:
        return "!" + await super().answer(question, loud=loud)


async def test_a_call_reaches_the_object_with_its_arguments_and_awaits_what_it_returns():
    role = Role()
    agent: Agent[Role] = Agent(role)
    assert await agent.call(Role.answer, "two", loud=True) == "TWO"
    assert await agent.call(Role.count) == 1  # a plain method's value, not a coroutine
    assert role.asked == [("answer", ("two",), {"loud": True})]


async def test_the_method_is_looked_up_on_the_agent_so_an_override_answers():
    assert await Agent(Louder()).call(Role.answer, "x") == "!x"


async def test_anything_but_a_roles_method_is_refused_with_a_line_saying_what_to_pass():
    agent = Agent(Role())
    for wrong in (agent.agent.answer, len, lambda: 1):
        with pytest.raises(TypeError, match=r"such as Student\.answer"):
            await agent.call(wrong)  # type: ignore[arg-type]


def _roles() -> dict[str, type]:
    from classroom.agents.grading import Grader
    from classroom.agents.roles import Student, Teacher
    from classroom.environments.dataenvgym.agent import DataGenerator
    from classroom.environments.tom.teacher import TomTeacher

    return {"Student": Student, "Teacher": Teacher, "Grader": Grader, "DataGenerator": DataGenerator, "TomTeacher": TomTeacher}


def test_no_role_method_is_declared_twice():
    """No class that forwards to an agent (a subclass of Agent anywhere in the package)
    declares a method its role already has: the role's own is called through Agent.call.
    The classes are found by reading the source, so a new client class is seen too."""
    roles, twice, found = _roles(), [], []
    for folder in ("agents", "environments", "launch", "serving"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef):
                    continue
                for base in node.bases:
                    text = ast.unparse(base)
                    role = "Student" if text == "StudentAgent" else text[len("Agent[") : -1] if text.startswith("Agent[") else None
                    if role is None and text != "Agent":
                        continue
                    found.append(node.name)
                    methods = {f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
                    have = {n for n in dir(roles[role]) if not n.startswith("_")} if role else set()
                    twice += [f"{path.relative_to(REPO)}: {node.name}.{m}" for m in sorted(methods & have)]
    assert found == ["StudentAgent"], found  # the one subclass today: adapters carried as files
    assert not twice, twice
