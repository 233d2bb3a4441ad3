"""Skills: how problems are labelled with them, and accuracy reports sliced by them.

A problem's ``skills`` hold top-level skills ("chain_sum") and sub-skills written as
paths ("chain_sum/two_terms"). Skill discovery either takes the labels the task gives
(reasoning-gym generators carry them) or asks the teacher model to label each problem
and merge the labels into a few categories.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import Attempt, ParseFailure, Problem, SkillSlice
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.structured import chat_structured
from classroom.serving.types import ChatMessage, SamplingParams

UNLABELLED = "unlabelled"


def top_skill(skill: str) -> str:
    """The skill a path names: "chain_sum/two_terms" -> "chain_sum"."""
    return skill.split("/", 1)[0]


def skill_report(problems: Sequence[Problem], attempts: Sequence[Attempt], name: str = "all") -> SkillSlice:
    """Overall, per-skill and per-sub-skill correct/total counts as a tree of slices."""
    by_id = {p.id: p for p in problems}
    tops: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    subs: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    correct = 0
    # An ungradeable attempt (its scorer timed out or failed) is neither right nor wrong.
    attempts = [a for a in attempts if a.correct is not None]
    for attempt in attempts:
        right = int(bool(attempt.correct))
        correct += right
        skills = by_id[attempt.problem_id].skills or (UNLABELLED,)
        for top in dict.fromkeys(top_skill(s) for s in skills):
            tops[top][0] += right
            tops[top][1] += 1
        for skill in skills:
            if "/" in skill:
                subs[top_skill(skill)][skill][0] += right
                subs[top_skill(skill)][skill][1] += 1
    children = tuple(
        SkillSlice(
            name=top,
            correct=c,
            count=n,
            children=tuple(SkillSlice(name=s, correct=sc, count=sn) for s, (sc, sn) in sorted(subs[top].items())),
        )
        for top, (c, n) in sorted(tops.items())
    )
    return SkillSlice(name=name, correct=correct, count=len(attempts), children=children)


def flat_accuracy(report: SkillSlice) -> dict[str, float]:
    """Accuracy of every skill and sub-skill slice of a report, by name."""
    result: dict[str, float] = {}
    for top in report.children:
        if top.accuracy is not None:
            result[top.name] = top.accuracy
        for sub in top.children:
            if sub.accuracy is not None:
                result[sub.name] = sub.accuracy
    return result


@dataclass(frozen=True)
class Discovered:
    """Problems labelled with skills, the replies that did not parse, the tokens spent."""

    problems: list[Problem]
    failures: list[ParseFailure] = field(default_factory=list)
    tokens: int = 0


@runtime_checkable
class SkillDiscovery(Protocol):
    """Labels problems with skills."""

    name: str

    async def discover(self, problems: Sequence[Problem], llm: LLM | None) -> Discovered: ...


class TaskSkills:
    """Skills as the task gives them (reasoning-gym: generator and sub-skill)."""

    name = "task"

    async def discover(self, problems: Sequence[Problem], llm: LLM | None) -> Discovered:
        return Discovered(list(problems))


class SkillLabel(BaseModel):
    """The teacher's label for one problem."""

    model_config = ConfigDict(extra="forbid")
    skill: str = Field(min_length=1, max_length=60)


class SkillCategory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    labels: list[str]


class SkillCategories(BaseModel):
    """The teacher's grouping of skill labels into a few categories."""

    model_config = ConfigDict(extra="forbid")
    categories: list[SkillCategory]


def _normal(label: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", " ", label.lower()).strip() or UNLABELLED


class TeacherSkills:
    """Skills inferred by the teacher model: label each problem, merge labels into categories.

    Labels that do not parse, and labels the merge leaves out, fall back to the most
    frequent labels (and "other"), so every problem ends up with exactly one skill. A
    label merged into another category stays as its sub-skill ("arithmetic/addition"):
    the skill tree's sub-skills on a task that has none of its own.
    """

    name = "teacher"

    def __init__(self, max_categories: int = 6, max_tokens: int = 48, prompts: dict[str, str] | None = None):
        if max_categories < 1:
            raise ValueError(f"TeacherSkills: max_categories must be >= 1, got {max_categories}")
        self.max_categories = max_categories
        self.params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        self.prompts = PromptSet.load("classroom.agents", "prompts/skills.yaml", prompts)

    async def discover(self, problems: Sequence[Problem], llm: LLM | None) -> Discovered:
        if llm is None:
            raise ValueError("teacher skill discovery needs the teacher's model")
        recorded: list[ParseFailure] = []
        conversations = [[ChatMessage(role="user", content=self.prompts.render("label", question=p.question))] for p in problems]
        labels: list[str] = []
        replies = await chat_structured(llm, conversations, SkillLabel, self.params)
        tokens = sum(r.usage.total_tokens for r in replies)
        for problem, parsed in zip(problems, replies):
            if parsed.value is None:
                recorded.append(
                    ParseFailure(
                        sender="skill_discovery",
                        parents=(problem.id,),
                        expected="SkillLabel",
                        raw_text=parsed.raw,
                        error=parsed.error or "",
                    )
                )
                labels.append(UNLABELLED)
            else:
                labels.append(_normal(parsed.value.skill))
        mapping, merge_tokens = await self._merge(labels, llm, recorded)
        relabelled = [
            p.model_copy(update={"skills": self._skills(mapping.get(label, "other"), label)}) for p, label in zip(problems, labels)
        ]
        return Discovered(relabelled, recorded, tokens + merge_tokens)

    @staticmethod
    def _skills(category: str, label: str) -> tuple[str, ...]:
        return (category,) if label == category else (category, f"{category}/{label}")

    async def _merge(self, labels: list[str], llm: LLM, recorded: list[ParseFailure]) -> tuple[dict[str, str], int]:
        """label -> category, and the tokens the merge spent."""
        counts = Counter(labels)
        if len(counts) <= self.max_categories:
            return {label: label for label in counts}, 0
        unique = sorted(counts)
        params = self.params.model_copy(update={"max_tokens": 64 + 24 * len(unique)})
        prompt = self.prompts.render("merge", k=self.max_categories, labels=", ".join(unique))
        parsed = (await chat_structured(llm, [[ChatMessage(role="user", content=prompt)]], SkillCategories, params))[0]
        mapping: dict[str, str] = {}
        if parsed.value is not None:
            for category in parsed.value.categories[: self.max_categories]:
                for label in category.labels:
                    if _normal(label) in counts:
                        mapping.setdefault(_normal(label), _normal(category.name))
        else:
            recorded.append(
                ParseFailure(sender="skill_discovery", expected="SkillCategories", raw_text=parsed.raw, error=parsed.error or "")
            )
        # Whatever the merge left out: the most frequent labels keep their name.
        frequent = [label for label, _ in counts.most_common(self.max_categories - 1)]
        for label in counts:
            if label not in mapping:
                mapping[label] = label if label in frequent and not parsed.value else "other"
        return mapping, parsed.usage.total_tokens
