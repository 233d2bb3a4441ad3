"""Fault doubles: plug-ins that misbehave on purpose, named by `_target_` in tests."""

from __future__ import annotations

from typing import ClassVar

from classroom.environments.lbt.exemplars import ProgrammaticProposer, Proposals


class GarbledProposer(ProgrammaticProposer):
    """Fault injection (a test double): the first proposal of each iteration is not JSON.
    It also keeps every problem it is shown (``shown``, across instances: the loop builds
    its own), so a test can check that no held-out problem reaches a proposer."""

    name = "garbled"
    shown: ClassVar[list] = []  # shared on purpose: the test reads what any instance saw

    async def initial(self, pool, size, llm, *, seed):
        GarbledProposer.shown.extend(pool)
        return await super().initial(pool, size, llm, seed=seed)

    async def propose(self, current, errors, pool, count, llm, *, seed):
        GarbledProposer.shown.extend([*pool, *(problem for problem, _ in errors)])
        made = await super().propose(current, errors, pool, count, llm, seed=seed)
        return Proposals(["{exemplars: not json", *made.texts[1:]], made.tokens)


class DyingProposer(ProgrammaticProposer):
    """Fault injection (a test double): the episode stops in iteration 2's proposals, as
    if its process were killed there."""

    async def propose(self, current, errors, pool, count, llm, *, seed):
        if seed % 100 == 2:  # the loop seeds iteration i's proposals with seed * 100 + i
            raise RuntimeError("killed in iteration 2")
        return await super().propose(current, errors, pool, count, llm, seed=seed)
