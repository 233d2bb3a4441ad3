"""model=cpu_pair: the GPU configuration's shape on the CPU. The teacher runs the
embedded model (SmolLM2-135M, a Llama), the student random-qwen2 (a Qwen2 with random
weights built here), on their own engines, the student's on two replicas.

The student's answers are noise. What these tests show is that each path carries the
model it is given: an adapter trained for the student is trained on the student's own
base (its weight shapes are the Qwen2's, read from the built model's config.json) and
loaded into the student's engines, not the teacher's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.cli import classroom
from support.engines import composed

from classroom.agents.messages import Attempt, Explanation, TrainingRun
from classroom.launch.rundir import read_events

PAIR = ["model=cpu_pair", "progress=false"]


@pytest.fixture(scope="module")
def pair_pool(kept):
    """The pair's engine pool, which the module's episodes play on (kept, as every
    pool of the tier); stopped after the module, so that the tier's other tests (and
    the kill tests' own runs) get its three engines' memory back."""
    import ray

    from classroom.serving.pool import PoolConfig

    pair = PoolConfig.model_validate(composed(PAIR)["model"])
    pool = kept.get(pair)
    yield pool
    actors = [actor for _, actor in pool.engine_actors()]
    kept.release(pair)
    # ray.kill is asynchronous: an engine may still answer a call made just after it.
    deadline = time.time() + 60
    for actor in actors:
        while True:
            try:
                ray.get(actor.info.remote(), timeout=60)
            except ray.exceptions.RayActorError:
                break
            assert time.time() < deadline, "an engine of the released pool still answers after 60 s"
            time.sleep(0.5)


def lora_shapes(adapter: Path) -> dict[str, tuple[int, ...]]:
    """Each LoRA weight of an adapter folder and its shape, read from the safetensors."""
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as f:
        return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)


def served_adapters(pool) -> dict[str, list[set[str]]]:
    """Model name -> the adapters each of its engine replicas serves now."""
    import ray

    actors = pool.engine_actors()
    infos = ray.get([actor.info.remote() for _, actor in actors])
    served: dict[str, list[set[str]]] = {}
    for (label, _), info in zip(actors, infos, strict=True):
        served.setdefault(label.removeprefix("engine ").split("#")[0], []).append(set(info["adapters"]))
    return served


def test_a_gpu_experiment_on_the_pair_trains_the_students_adapter_on_the_students_model(pair_pool, tmp_path):
    """experiment=dataenvgym_gpu_skill_list (the teacher model plans, the student is
    LoRA-trained) with model=cpu_pair and the trainer on the CPU; the data made by the
    reasoning-gym engine rather than written by the teacher model, since a 135M teacher's
    problems fail the quality checks and nothing would be trained (the teacher-written
    path is run by test_dataenvgym's teacher-model test)."""
    from classroom.serving.embedded import resolve_model

    runs = tmp_path / "runs"
    out = classroom(
        "run",
        "experiment=dataenvgym_gpu_skill_list",
        *PAIR,
        "student.learner.trainer_num_gpus=0",
        "env/engine=reasoning_gym",
        "env.iterations=1",
        "env.examples_per_iteration=6",
        "env.val_size=4",
        "env.test_size=2",
        env={"CLASSROOM_RUNS": str(runs)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"

    student_model = Path(resolve_model("random-qwen2"))
    shape = json.loads((student_model / "config.json").read_text())
    teacher_shape = json.loads((Path(resolve_model("embedded")) / "config.json").read_text())
    assert shape["architectures"] != teacher_shape["architectures"] and shape["hidden_size"] != teacher_shape["hidden_size"]

    [run] = [m for m in read_events(run_dir / "events.jsonl")[1] if isinstance(m, TrainingRun)]
    adapter = Path(run.adapter_path)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(student_model)
    # The weights say the same, by their shapes: the Qwen2's width, its one KV head, its layers.
    shapes = lora_shapes(adapter)
    head = shape["hidden_size"] // shape["num_attention_heads"]
    q = [s for k, s in shapes.items() if "q_proj.lora_A" in k]
    k = [s for k, s in shapes.items() if "k_proj.lora_B" in k]
    assert len(q) == shape["num_hidden_layers"] and all(s[1] == shape["hidden_size"] for s in q)
    assert all(s[0] == shape["num_key_value_heads"] * head for s in k)

    # Loaded into both replicas of the student's engine, and not into the teacher's.
    served = served_adapters(pair_pool)
    assert len(served["student"]) == 2 and all(run.adapter in names for names in served["student"])
    assert not any(run.adapter in names for names in served["teacher"])


def test_supercorrect_on_the_pair_trains_stage_1_on_the_students_model(pair_pool, tmp_path):
    """SuperCorrect's stage-1 learner (env.sft, built by the loop, not the student
    section) on the pair: its adapter is for the student's model, in both replicas."""
    from classroom.serving.embedded import resolve_model

    runs = tmp_path / "runs"
    out = classroom(
        "run",
        "experiment=supercorrect",
        *PAIR,
        "env.stage=sft",
        "env.train_problems=4",
        "env.num_problems=2",
        "env.localisation=0",
        "env.answer_tokens=32",
        "env.sft.epochs=1",
        env={"CLASSROOM_RUNS": str(runs)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    [run] = [m for m in read_events(run_dir / "events.jsonl")[1] if isinstance(m, TrainingRun)]
    adapter = Path(run.adapter_path)
    student_model = Path(resolve_model("random-qwen2"))
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(student_model)
    width = json.loads((student_model / "config.json").read_text())["hidden_size"]
    assert all(s[1] == width for k, s in lora_shapes(adapter).items() if "q_proj.lora_A" in k)
    served = served_adapters(pair_pool)
    assert all(run.adapter in names for names in served["student"]) and not any(run.adapter in n for n in served["teacher"])


# Each loop that trains nothing, as small as it goes: what is tested is which engine
# answers for which role.
UNTRAINED = {
    "tom": ["env.num_problems=2", "env.seed_set_size=1", "env.post_test_size=1", "env.budgets=[0,1]", "env.demo_counts=[0,1]"],
    "lbt_m1": ["experiment=lbt_m1", "class=one", "env.num_problems=2", "env.m1.samples=2", "env.m1.exam_size=1", "env.m1.repeats=1"],
}


@pytest.mark.parametrize("loop", sorted(UNTRAINED))
def test_each_role_is_answered_by_its_own_engine_on_the_pair(loop, pair_pool, tmp_path):
    runs = tmp_path / "runs"
    sizes = ["student.sampling.max_tokens=16", "teacher.sampling.max_tokens=24"]
    out = classroom("run", *UNTRAINED[loop], *PAIR, *sizes, env={"CLASSROOM_RUNS": str(runs)})
    assert out.returncode == 0, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    messages = read_events(run_dir / "events.jsonl")[1]
    by_sender: dict[str, set[str]] = {}
    for m in messages:
        if isinstance(m, Attempt | Explanation) and m.usage is not None:
            by_sender.setdefault(m.sender, set()).add(m.usage.model)
    # model=cpu_pair names its models after their roles: the teacher's replies came from
    # the teacher's engine (embedded), every student's from the student's (random-qwen2).
    assert by_sender.pop("teacher") == {"teacher"} and by_sender == {"student": {"student"}}
