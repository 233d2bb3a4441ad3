"""Plan arithmetic: allocations in whole examples, the skill tree, engine requests."""

from __future__ import annotations

from classroom.agents.skills import top_skill
from classroom.environments.dataenvgym.types import Action, DataRequest, Exploit, Explore, Observation, SkillTree


def scale_allocation(allocation: dict[str, float], budget: int) -> dict[str, int]:
    """Non-negative weights -> whole counts summing to ``budget`` (largest remainders)."""
    weights = {k: max(float(v), 0.0) for k, v in allocation.items()}
    total = sum(weights.values())
    if budget <= 0 or not weights:
        return dict.fromkeys(weights, 0)
    if total <= 0:
        weights = dict.fromkeys(weights, 1.0)
        total = float(len(weights))
    exact = {k: budget * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for key in sorted(exact, key=lambda k: counts[k] - exact[k])[: budget - sum(counts.values())]:
        counts[key] += 1
    return counts


def apply_to_tree(action: Action, tree: SkillTree, budget: int) -> SkillTree:
    """The skill tree after an Explore (adds sub-skills) or Exploit (reallocates)."""
    flat = {sub: n for subs in tree.values() for sub, n in subs.items()}
    if isinstance(action, Explore):
        flat.update({sub: n for sub, n in action.new_subskills.items() if "/" in sub})
    elif isinstance(action, Exploit):
        # Exploit moves data among known sub-skills only; anything else is ignored.
        flat = {sub: action.allocations.get(sub, 0) for sub in flat}
    else:
        return tree
    new: SkillTree = {}
    for sub, n in scale_allocation(flat, budget).items():
        new.setdefault(top_skill(sub), {})[sub] = n
    return new


def requests_for(action: Action, observation: Observation) -> list[DataRequest]:
    """The engine requests an action stands for."""
    if isinstance(action, (Explore, Exploit)):
        tree = apply_to_tree(action, observation.tree, observation.budget)
        return [DataRequest(skill=sub, count=n) for subs in tree.values() for sub, n in subs.items() if n > 0]
    if action.allocations:
        return [DataRequest(skill=s, count=n, instructions=action.instructions) for s, n in action.allocations.items() if n > 0]
    by_id = {p.id: p for p in observation.problems}
    like = tuple(by_id[i] for i in action.like_problem_ids if i in by_id)
    return [DataRequest(count=action.count, instructions=action.instructions, like=like)] if action.count > 0 else []
