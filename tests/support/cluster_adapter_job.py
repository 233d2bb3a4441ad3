"""A Ray job that tests/test_cluster.py submits to its multi-node cluster (not a test).

A student actor on one node (``plain_node``) learns a LoRA adapter; this driver, on
the head, keeps the adapter's files in its run directory; the student's engine, on a
third node (``student_node``), serves them; a student started again on the head from
that run directory (as a resumed episode does) answers the same. Each node has its own
adapters folder (``CLASSROOM_ADAPTERS_DIR``, set per raylet): what lands in which says
which process wrote what. Prints one JSON line of what happened, where.

Usage: python cluster_adapter_job.py RUN_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import ray

NUMBERS = range(2, 18)
# As test_learners' FAST_FIT: enough to change the student's greedy answers.
LEARNER = {"base_model": "embedded", "epochs": 3, "learning_rate": 3e-3, "batch_size": 4}
SAMPLING = {"max_tokens": 16, "temperature": 0.0}


def _node(_: Any = None) -> str:
    return ray.get_runtime_context().get_node_id()


def _learner_adapter(student: Any) -> str | None:
    return student.learner.adapter.digest if student.learner.adapter is not None else None


async def lesson(run_dir: Path, engine: Any) -> dict[str, Any]:
    from classroom.agents.learners import LoRALearner
    from classroom.agents.messages import Problem, TrainingExample
    from classroom.agents.roles import Student
    from classroom.agents.transport import StudentAgent

    examples = [
        TrainingExample(id=f"z{n}", prompt=f"What is the zorp of {n}?", completion=f"The zorp of {n} is {n + 10}.", answer=str(n + 10))
        for n in NUMBERS
    ]
    problems = [Problem(id=e.id, question=e.prompt, answer=e.answer or "") for e in examples]

    def seat(node_label: str) -> Any:
        return (
            ray.remote(Student)
            .options(num_cpus=0, resources={node_label: 0.01})
            .remote(engine, name="student", learner=LoRALearner(**LEARNER), sampling=SAMPLING)
        )

    student = StudentAgent(seat("plain_node"))
    before = await student.call(Student.answer, problems, phase="before")
    run = await student.train_and_keep(examples, iteration=1, out_dir=str(run_dir / "adapter"), adapter_name="zorp")
    after = await student.call(Student.answer, problems, phase="after")
    state = await student.call(Student.save_state)
    # A new student elsewhere, rebuilt from the state and the run directory's files.
    again = StudentAgent(seat("teacher_node"))
    await again.restore_from_checkpoint(state)
    restored = await again.call(Student.answer, problems, phase="after")
    return {
        "driver_node": _node(),
        "student_node": await student.agent.__ray_call__.remote(_node),
        "restored_node": await again.agent.__ray_call__.remote(_node),
        "engine_node": await engine.actor.__ray_call__.remote(_node),
        "adapter_path": run.adapter_path,
        "state": state,
        "learner_adapter": await again.agent.__ray_call__.remote(_learner_adapter),
        "before": [a.reasoning for a in before],
        "after": [a.reasoning for a in after],
        "restored": [a.reasoning for a in restored],
        "targets": [e.answer for e in examples],
    }


def main(run_dir: Path) -> None:
    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.vllm_engine import start_engine

    ray.init(address="auto")
    config = VLLMEngineConfig(
        model="embedded", served_model_name="student", kv_cache_gib=1.0, max_model_len=1024, max_num_seqs=16, resources={"student_node": 1}
    )
    engine = start_engine(config)
    print(json.dumps(asyncio.run(lesson(run_dir, engine))), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
