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
from classroom.environments.eventlog import read_events

PAIR = ["model=cpu_pair", "progress=false"]


@pytest.fixture(scope="module")
def pair_pool(kept):
    """The pair's engine pool, which the module's episodes play on (kept, as every
    pool of the tier); stopped after the module, so that the tier's other tests (and
    the kill tests' own runs) get its three engines' memory back."""
    import ray

    from classroom.agents.learners import LoRALearner
    from classroom.serving.pool import PoolConfig

    pair = PoolConfig.model_validate(composed(PAIR)["model"])
    pool = kept.get(pair)
    # The student model's trainer actor, kept for the module as the tier's `trainer`
    # fixture keeps the embedded model's: Ray ends it with its last handle, and each
    # episode that trains would start (and load) it again.
    student_trainer = LoRALearner(base_model=pair.adapter_bases()["student"])._trainer()
    yield pool
    ray.kill(student_trainer)
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


# ToM's default episode, as small as it goes.
TOM_TINY = ["env.num_problems=2", "env.seed_set_size=1", "env.post_test_size=1", "env.budgets=[0,1]", "env.demo_counts=[0,1]"]


def assert_each_role_on_its_engine(messages: list, pool) -> None:
    """model=cpu_pair names its models after their roles: the teacher's replies came from
    the teacher's engine (embedded), every student's from the student's (random-qwen2).
    A reply with an adapter names the adapter: it counts for the engines that serve it."""
    engine_of = {"teacher": "teacher", "student": "student"}
    for label, replicas in served_adapters(pool).items():
        engine_of.update({adapter: label for names in replicas for adapter in names})
    by_sender: dict[str, set[str]] = {}
    for m in messages:
        if isinstance(m, Attempt | Explanation) and m.usage is not None:
            by_sender.setdefault(m.sender, set()).add(engine_of[m.usage.model])
    assert by_sender.pop("teacher", {"teacher"}) == {"teacher"}
    assert by_sender and set().union(*by_sender.values()) == {"student"}, by_sender


def test_a_tom_episode_asks_each_role_of_its_own_engine_on_the_pair(pair_pool, tmp_path):
    """ToM, a loop that no experiment file names (it is the default), as small as it goes."""
    from classroom.serving.embedded import resolve_model

    # The two models differ in architecture and width: what one path assumed of the
    # other would show.
    student, teacher = (json.loads((Path(resolve_model(m)) / "config.json").read_text()) for m in ("random-qwen2", "embedded"))
    assert student["architectures"] != teacher["architectures"] and student["hidden_size"] != teacher["hidden_size"]
    runs = tmp_path / "runs"
    sizes = ["student.sampling.max_tokens=16", "teacher.sampling.max_tokens=24"]
    out = classroom("run", *TOM_TINY, *PAIR, *sizes, env={"CLASSROOM_RUNS": str(runs)})
    assert out.returncode == 0, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    messages = read_events(run_dir / "events.jsonl")[1]
    assert any(isinstance(m, Explanation) and m.sender == "teacher" for m in messages)
    assert_each_role_on_its_engine(messages, pair_pool)


# Every shipped experiment on the pair (issue #26 item 3), each as small as its loop goes:
# what is tested is that it runs end to end on models that are not the embedded one,
# and that every adapter it trains is for the model of the engine that serves it.
TINY = {
    "dataenvgym": [
        "env.iterations=1",
        "env.examples_per_iteration=4",
        "env.val_size=2",
        "env.test_size=2",
        # What a *_gpu_* experiment sets for its trainer; the CPU has no GPU to give it.
        "++student.learner.trainer_num_gpus=0",
        "student.sampling.max_tokens=16",
    ],
    "lbt": [
        "env.num_problems=2",
        # Sums of two digits and rationales long enough to reach an answer: M2's pairs
        # need the 135M teacher right on one sample and wrong on another (the noise
        # students score nothing; on the experiment's own skills it is right on none).
        "~task.skills",
        "+task.skills={chain_sum:{two:{min_terms:2,max_terms:2,min_digits:1,max_digits:1}}}",
        "env.m1.samples=3",
        "env.m1.exam_size=1",
        "env.m1.repeats=1",
        "env.m1.rationale_tokens=96",
        "env.m1.answer_tokens=16",
        "env.m2.train_problems=3",
        "env.m2.max_pairs_per_problem=1",
        "env.m3.iterations=1",
        "env.m3.proposals=1",
        "env.m3.train_items=2",
        "env.m3.answer_tokens=16",
    ],
    "supercorrect": [
        "env.train_problems=4",
        "env.num_problems=2",
        "env.localisation=2",
        "env.solutions=1",
        "env.answer_tokens=32",
        "env.localisation_tokens=16",
        "env.sft.epochs=1",
        "env.dpo.epochs=1",
    ],
}
EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "experiment").glob("*.yaml"))


# The DataEnvGym teacher model's plans and problems, shorter than their defaults.
TEACHER_MODEL = ["+env.policy.max_tokens=128", "+env.engine.max_tokens=128"]


def _tiny(experiment: str) -> list[str]:
    [loop] = [loop for loop in TINY if experiment.startswith(loop)]
    teacher_model = TEACHER_MODEL if "_llm_" in experiment or "_gpu_" in experiment else []
    return [f"experiment={experiment}", *PAIR, *TINY[loop], *teacher_model]


def _experiment_groups() -> list[list[str]]:
    """The experiments, grouped by the config they compose on the pair: files that differ
    only in what the pair replaces (a *_gpu_* experiment is its *_llm_* one on vllm_gpu
    with a GPU trainer) compose the same episode, which is run once for all of them."""
    groups: dict[str, list[str]] = {}
    for experiment in EXPERIMENTS:
        groups.setdefault(json.dumps(composed(_tiny(experiment)), sort_keys=True), []).append(experiment)
    return list(groups.values())


def test_the_experiment_groups_hold_every_shipped_experiment_once():
    grouped = [e for group in _experiment_groups() for e in group]
    assert sorted(grouped) == EXPERIMENTS and len(EXPERIMENTS) >= 16


@pytest.mark.parametrize("group", _experiment_groups(), ids="=".join)
def test_every_experiment_runs_on_the_pair_and_trains_for_the_engine_that_serves(group, pair_pool, tmp_path):
    import ray

    runs = tmp_path / "runs"
    out = classroom("run", *_tiny(group[0]), env={"CLASSROOM_RUNS": str(runs)})
    assert out.returncode == 0, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    messages = read_events(run_dir / "events.jsonl")[1]
    assert_each_role_on_its_engine(messages, pair_pool)
    if "dataenvgym_llm_skill_list" in group:
        assert_the_teacher_models_data_recounts(messages, summary)
    # Every adapter an engine serves now (trained by the episode, or a class recipe's)
    # was trained for the engine's own model: its adapter_config.json names it, and its
    # LoRA weights have that model's width.
    infos = ray.get([actor.info.remote() for _, actor in pair_pool.engine_actors()])
    for info in infos:
        width = json.loads((Path(info["model_path"]) / "config.json").read_text())["hidden_size"]
        for name, path in info["adapter_paths"].items():
            base = json.loads((Path(path) / "adapter_config.json").read_text())["base_model_name_or_path"]
            assert base == info["model_path"], (name, path)
            assert {s[1] for k, s in lora_shapes(Path(path)).items() if "q_proj.lora_A" in k} == {width}, (name, path)
    # Every adapter the episode logged it trained is served by every replica of one model;
    # a loop that trains did (a 135M teacher's own problems fail the quality checks, so
    # the teacher-written DataEnvGym data may train nothing).
    trained = [m for m in messages if isinstance(m, TrainingRun) and m.adapter]
    assert trained or any("_llm_" in e or "_gpu_" in e for e in group) or group[0] in ("lbt", "lbt_m1", "lbt_m3"), group
    served = served_adapters(pair_pool)
    for run in trained:
        assert [model for model, replicas in served.items() if all(run.adapter in names for names in replicas)], (run.adapter, served)


def assert_the_teacher_models_data_recounts(messages: list, summary: dict) -> None:
    """The teacher-model agent's episode (its plan and its data from the teacher model,
    on the 135M model): every example it wrote is logged, kept or dropped with a reason;
    every reply that did not parse is a logged failure; the summary's counts are the log's."""
    from classroom.agents.messages import ParseFailure, TrainingExample
    from classroom.environments.dataenvgym.types import DataPlan

    examples = [m for m in messages if isinstance(m, TrainingExample)]
    failures = [m for m in messages if isinstance(m, ParseFailure)]
    [plan] = [m for m in messages if isinstance(m, DataPlan)]
    # The plan (the model's, or the built-in one it fell back to) spends the 4 examples.
    assert sum(plan.allocations.values()) == 4
    # Each example asked for was written (then kept or dropped) or is a failure of the engine.
    assert len(examples) + sum(f.expected == "_WrittenProblem" for f in failures) == 4
    assert summary["examples_generated"] == len(examples) and summary["examples_kept"] == sum(bool(e.kept) for e in examples)
    assert all(e.drop_reason for e in examples if not e.kept)
    assert summary["parse_failures"] == len(failures) and all(f.raw_text is not None for f in failures)
    # The model's plans that did not parse (the policy and the engine are both "llm"):
    # each replaced by the built-in policy's.
    assert summary["fallbacks"] == sum(f.expected != "_WrittenProblem" for f in failures)
    assert summary["tokens"]["data_generator"] > 0


# Each loop on a task it was not written for (issue #26 item 6), with the setting the
# dry run's line names where the default cannot teach it (tests/unit/test_dry_run.py
# checks every loop on both tasks stops in one line or plans; these complete).
LBT_SIZES = [s for s in TINY["lbt"] if "task.skills" not in s]
ON_A_NEW_TASK = {
    "tom-svamp": ["task=svamp", *TOM_TINY],
    "lbt-gsm8k": ["experiment=lbt", "task=gsm8k", *LBT_SIZES],
    "dataenvgym_llm-gsm8k": ["experiment=dataenvgym", "env/engine=llm", "task=gsm8k", *TINY["dataenvgym"], "+env.engine.max_tokens=128"],
    "supercorrect_llm-svamp": [
        "experiment=supercorrect",
        "~task.skills",
        "task=svamp",
        "env.teacher._target_=classroom.environments.supercorrect.teachers.LLMTeacher",
        "+env.teacher.max_tokens=160",
        *TINY["supercorrect"],
    ],
}


@pytest.mark.parametrize("case", sorted(ON_A_NEW_TASK))
def test_each_loop_completes_on_a_task_it_was_not_written_for(case, pair_pool, tmp_path):
    runs = tmp_path / "runs"
    sizes = ["student.sampling.max_tokens=16", "teacher.sampling.max_tokens=48"]
    out = classroom("run", *ON_A_NEW_TASK[case], *PAIR, *sizes, env={"CLASSROOM_RUNS": str(runs)})
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    if case.startswith("supercorrect"):
        # The 135M teacher model writes no usable template for SVAMP's problems: each is
        # logged with its reason, and the episode stops in one line saying so.
        [line] = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 1 and line.startswith(
            "episode stopped: the llm teacher wrote no usable template for 4 training problems"
        ), line
        dropped = [m for m in read_events(run_dir / "events.jsonl")[1] if getattr(m, "expected", None) == "ThoughtTemplate"]
        assert f"({len(dropped)} dropped, logged with their reasons" in line and dropped
        return
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["task"] == case.rsplit("-", 1)[1]
