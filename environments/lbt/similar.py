"""Exams of similar problems: what students take after learning from a rationale.

- A reasoning-gym problem: the same generator with the same settings, other seeds
  (the analogue of the paper's MATH() variants); for ``gsm_symbolic`` (GSM8K-style
  problems) the same template with other numbers.
- A problem from a task without generators (GSM8K, SVAMP files): other problems with the
  same skill label, else the nearest by text similarity (``difflib``, the standard
  library's sequence matcher).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
from collections.abc import Sequence
from typing import Any

from classroom.agents.grading import REASONING_GYM_KEY, is_reasoning_gym_problem, reasoning_gym_dataset
from classroom.agents.messages import Problem
from classroom.environments.tasks import Task


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:8], 16)


class SimilarProblems:
    """Exam problems like a given one, fresh for each (problem, salt), the same for the same."""

    def __init__(self, task: Task, pool_split: str, seed: int = 0):
        self.task = task
        self.pool = task.split(pool_split) if pool_split in task.splits() else []
        self.seed = seed

    def exam(self, problem: Problem, size: int, salt: int = 0) -> list[Problem]:
        """``size`` problems like ``problem`` (never the problem itself)."""
        if is_reasoning_gym_problem(problem):
            return self._generated(problem, size, salt)
        return self._from_pool(problem, size, salt)

    def _generated(self, problem: Problem, size: int, salt: int) -> list[Problem]:
        info = problem.metadata[REASONING_GYM_KEY]
        dataset_name, config = info["dataset"], dict(info.get("config") or {})
        seed = 30_000_000 + _seed(self.seed, problem.id, salt) % 10_000_000
        if dataset_name == "gsm_symbolic":
            entries = self._same_template(config, info["entry"], size, seed)
        else:
            fresh = {**config, "size": size + 1, "seed": seed}
            data = reasoning_gym_dataset(dataset_name, fresh)
            entries = [(data[i], fresh) for i in range(size + 1)]
        exams = []
        for entry, entry_config in entries:
            if entry["question"].strip() == problem.question.strip() or len(exams) == size:
                continue
            exams.append(
                Problem(
                    id=f"{problem.id}~exam{salt}-{len(exams)}",
                    question=entry["question"],
                    answer=str(entry["answer"]),
                    skills=problem.skills,
                    task=problem.task,
                    split="exam",
                    metadata={REASONING_GYM_KEY: {"dataset": dataset_name, "config": entry_config, "entry": entry}},
                )
            )
        return exams

    @staticmethod
    def _same_template(config: dict[str, Any], entry: dict[str, Any], size: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """gsm_symbolic: the generator (template) that made ``entry``, with other numbers."""
        dataset = reasoning_gym_dataset("gsm_symbolic", config)
        template = dataset.task_indices[int(entry["metadata"]["source_index"])]
        generate = dataset.generators[template]
        made = []
        for i in range(size + 1):
            example = generate(random.Random(seed + i), config.get("difficulty", 1.0))
            example["question"] += " Give the result as your final answer. Do not include units."
            made.append((json.loads(json.dumps(example, default=str)), config))
        return made

    def _from_pool(self, problem: Problem, size: int, salt: int) -> list[Problem]:
        candidates = [p for p in self.pool if p.id != problem.id and p.question.strip() != problem.question.strip()]
        rng = random.Random(_seed(self.seed, problem.id, salt))
        same_skill = [p for p in candidates if set(p.skills) & set(problem.skills)]
        if len(same_skill) >= size:
            chosen = rng.sample(same_skill, size)
        else:
            by_text = sorted(candidates, key=lambda p: -difflib.SequenceMatcher(None, p.question, problem.question).ratio())
            chosen = same_skill + [p for p in by_text if p not in same_skill][: size - len(same_skill)]
        return [p.model_copy(update={"id": f"{problem.id}~exam{salt}-{i}", "split": "exam"}) for i, p in enumerate(chosen)]


def exam_problems(similar: SimilarProblems, problems: Sequence[Problem], size: int, salt: int = 0) -> dict[str, list[Problem]]:
    """An exam for each problem, by problem id."""
    return {p.id: similar.exam(p, size, salt) for p in problems}
