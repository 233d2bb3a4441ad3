"""A class of students: several students, each its own actor, name and LoRA adapter.

``students:`` in the config lists them. Students on one engine are that engine's LoRA
adapters served side by side (multi-LoRA), not several engines. A student's adapter is
a folder, or one trained at the start from a recipe (LoRA SFT on worked examples of
some reasoning-gym skills), cached by its recipe so a sweep trains it once. On the
CPU that makes a class with real differences: the base model, one that learned sums,
one that learned products.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classroom.agents.grading import reasoning_gym_dataset
from classroom.agents.step_checker import worked_solution
from classroom.serving.errors import BackendError
from classroom.serving.llm import AdapterLLM
from classroom.serving.prompts import PromptSet


class AdapterRecipe(BaseModel):
    """A LoRA adapter a student gets at the start: SFT on worked examples of some skills."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # reasoning-gym generator -> create_dataset settings of the problems it learns from.
    skills: dict[str, dict[str, Any]]
    # Worked examples in all, shared among the skills.
    examples: int = Field(48, ge=1)
    seed: int = 0
    # LoRALearner settings (epochs, learning_rate, r ...) over its defaults.
    learner: dict[str, Any] = Field(default_factory=dict)


class StudentSpec(BaseModel):
    """One student of the class (an entry of ``students:``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Its name: the sender of its messages, its key in summaries.
    name: str = Field(pattern=r"^[A-Za-z][\w-]*$")
    # The model role (in the pool) that serves it.
    role: str = "student"
    # A LoRA adapter folder to serve for it (None: the base model) ...
    adapter: str | None = None
    # ... or one trained at the start.
    recipe: AdapterRecipe | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StudentSpec:
        if self.adapter and self.recipe:
            raise ValueError("give an adapter folder or a recipe, not both")
        return self


def check_class(specs: Sequence[StudentSpec]) -> None:
    """At least one student, each name once."""
    if not specs:
        raise ValueError("students: the class needs at least one student")
    names = [s.name for s in specs]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"students: the name {doubled[0]!r} is used twice")


@dataclass(frozen=True)
class Seat:
    """A student as a loop spawns it: its name, model role and the adapter its engine
    serves it with (None: the base model)."""

    name: str
    role: str
    adapter: str | None = None


def recipe_rows(recipe: AdapterRecipe, prompts: PromptSet) -> list[dict[str, Any]]:
    """The recipe's worked examples in TRL's prompt-completion format, asked as the
    student is asked (its system prompt and question template)."""
    rows = []
    per_skill = max(recipe.examples // len(recipe.skills), 1)
    for offset, (dataset, settings) in enumerate(sorted(recipe.skills.items())):
        # Seeds far from any task's: the recipe's problems are not the tasks'.
        config = {**settings, "size": per_skill, "seed": 20_000_000 + recipe.seed * 100 + offset}
        data = reasoning_gym_dataset(dataset, json.loads(json.dumps(config)))
        for index in range(per_skill):
            entry = data[index]
            answer = str(entry["answer"])
            rows.append(
                {
                    "prompt": [
                        {"role": "system", "content": prompts.get("system")},
                        {"role": "user", "content": prompts.render("answer", question=entry["question"])},
                    ],
                    "completion": [{"role": "assistant", "content": worked_solution(entry.get("metadata", {}).get("expression"), answer)}],
                }
            )
    return rows


def adapters_dir() -> Path:
    from classroom.serving.embedded import cache_dir

    return cache_dir() / "adapters"


async def recipe_adapter(recipe: AdapterRecipe, base_model: str, prompts: PromptSet) -> str:
    """The adapter a recipe makes, trained once and cached by the recipe (and base model
    and prompts); several processes at once train it once, under a file lock."""
    from classroom.agents.learners import LoRALearner

    rows = recipe_rows(recipe, prompts)
    key = hashlib.sha256(json.dumps([recipe.model_dump(mode="json"), base_model, rows[:1]], sort_keys=True).encode()).hexdigest()[:16]
    root = adapters_dir()
    target = root / key
    if (target / "adapter_config.json").is_file():
        return str(target)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "adapter_config.json").is_file():
            return str(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            learner = LoRALearner(base_model=base_model, seed=recipe.seed, **recipe.learner)
            await learner.fit(rows, str(staging / "adapter"))
            (staging / "adapter" / "recipe.json").write_text(recipe.model_dump_json(indent=1))
            os.replace(staging / "adapter", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)


async def seat_class(specs: Sequence[StudentSpec], llms: dict[str, Any], *, base_models: dict[str, str], prompts: PromptSet) -> list[Seat]:
    """Seat every student: train recipes (once), load each adapter into the engine of the
    student's role under the student's name, and return the seats.

    ``llms`` maps each role to its LLM; ``base_models`` each role to the model its
    adapters are trained on.
    """
    seats = []
    for spec in specs:
        if spec.adapter is None and spec.recipe is None:
            seats.append(Seat(spec.name, spec.role))
            continue
        # Checked before a recipe trains: an adapter nothing can serve is not worth training.
        llm = llms[spec.role]
        if not isinstance(llm, AdapterLLM):
            raise BackendError(f"student {spec.name!r}: the {spec.role!r} model cannot load LoRA adapters")
        if spec.recipe is not None and spec.role not in base_models:
            raise BackendError(
                f"student {spec.name!r}: a recipe trains on the model of the vLLM engine that serves its role, "
                f"and no engine serves {spec.role!r}; give the student a trained adapter instead, or serve the role with backend: vllm"
            )
        path = spec.adapter
        if spec.recipe is not None:
            # Trained on the model of the engine that serves the student's role, whatever it is.
            path = await recipe_adapter(spec.recipe, base_models[spec.role], prompts)
        adapter = f"student-{spec.name}"
        await llm.load_adapter(adapter, path)
        seats.append(Seat(spec.name, spec.role, adapter))
    return seats
