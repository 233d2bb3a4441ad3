"""Learners without a model: in-context memory, settings errors, device options, and
the one-line refusals (LoRA training itself: tests/integration/test_learners.py)."""

from __future__ import annotations

import json
import re

import pytest
from support.cli import classroom

from classroom.agents.learners import InContextLearner, Learner, LoRALearner, device_args, trainer_actor_name
from classroom.agents.messages import TrainingExample


async def test_in_context_learner_remembers_new_examples_and_retrieves_by_skill():
    learner = InContextLearner(k=2)
    assert isinstance(learner, Learner) and isinstance(LoRALearner(base_model="embedded"), Learner)
    examples = [
        TrainingExample(id="a", prompt="1 + 1?", completion="2", answer="2", skills=("add",)),
        TrainingExample(id="b", prompt="2 * 3?", completion="6", answer="6", skills=("mul",)),
        TrainingExample(id="c", prompt="4 + 4?", completion="8", answer="8", skills=("add",)),
    ]
    assert (await learner.learn(examples[:2], [])).examples == 2
    outcome = await learner.learn(examples, [])  # all so far: only "c" is new
    assert outcome.examples == 1 and outcome.adapter is None
    from classroom.agents.messages import Problem

    shown = learner.demonstrations(Problem(id="q", question="5 + 5?", answer="10", skills=("add",)))
    assert [p.id for p, _ in shown] == ["c", "a"]  # shared skill first, most recent first
    again = InContextLearner(k=2)
    again.restore(json.loads(json.dumps(learner.state())))
    assert again.memory == learner.memory


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"mode": "online"}, "mode"),
        ({"r": 0}, "r"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"target_modules": "q_proj"}, "target_modules"),
        ({"trainer_num_gpus": -1}, "trainer_num_gpus"),
    ],
)
def test_bad_settings_name_the_key(kwargs, key):
    value = re.escape(repr(next(iter(kwargs.values()))))
    with pytest.raises(ValueError, match=f"^LoRALearner: {key} must be .*, got {value}$"):
        LoRALearner(base_model="embedded", **kwargs)


def test_trainer_on_a_gpu_is_built_from_its_options():
    """The GPU path, unit-tested from what it builds (these machines have no GPU)."""
    cpu, gpu = LoRALearner(base_model="embedded"), LoRALearner(base_model="embedded", trainer_num_gpus=1)
    assert cpu.settings()["device"] == "cpu" and gpu.settings()["device"] == "cuda"
    assert cpu.trainer_options() == {"name": trainer_actor_name("embedded"), "get_if_exists": True, "num_cpus": 0, "num_gpus": 0}
    assert gpu.trainer_options()["num_gpus"] == 1
    assert device_args("cpu") == {"use_cpu": True, "bf16": False, "fp16": False}
    assert device_args("cuda", bf16_supported=True) == {"use_cpu": False, "bf16": True, "fp16": False}
    assert device_args("cuda", bf16_supported=False) == {"use_cpu": False, "bf16": False, "fp16": True}
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'tpu'"):
        device_args("tpu")


async def test_fit_without_examples_says_there_is_nothing_to_train(tmp_path):
    with pytest.raises(ValueError, match="no examples to train on"):
        await LoRALearner(base_model="embedded").fit([], str(tmp_path / "adapter"))


def test_restore_rejects_a_missing_adapter(tmp_path):
    with pytest.raises(ValueError, match=r"has no adapter_config\.json"):
        LoRALearner(base_model="embedded", mode="incremental").restore({"trained": 3, "adapter_path": str(tmp_path)})


def test_bench_learner_rejects_bad_flags():
    for flag in ("--examples", "--rounds"):
        out = classroom("bench", "learner", flag, "0")
        assert out.returncode == 2 and out.stderr.strip() == f"classroom bench: {flag} must be >= 1, got 0", out.stderr


async def test_a_recipe_for_a_role_no_engine_serves_stops_before_training(tmp_path, monkeypatch):
    """A class recipe trains on the model of the engine that serves the student's role;
    an endpoint serves no model classroom can train on, so seating stops in one line
    before any training (it used to train a SmolLM2 adapter for whatever the endpoint
    served). The endpoint is never called."""
    from classroom.agents.class_roster import AdapterRecipe, StudentSpec, seat_class
    from classroom.serving.errors import BackendError
    from classroom.serving.openai_backend import OpenAIBackend
    from classroom.serving.pool import RoutedLLM
    from classroom.serving.prompts import PromptSet

    monkeypatch.setenv("CLASSROOM_CACHE", str(tmp_path))  # where a recipe would train into
    endpoint = RoutedLLM("qwen", [OpenAIBackend("http://127.0.0.1:9/v1", "qwen", keyless=True)])
    recipe = AdapterRecipe(skills={"chain_sum": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}}, examples=2)
    prompts = PromptSet.load("classroom.agents", "prompts/student.yaml")
    with pytest.raises(
        BackendError, match=r"student 'sums': a recipe trains on the model of the vLLM engine .* no engine serves 'student'"
    ):
        await seat_class([StudentSpec(name="sums", recipe=recipe)], {"student": endpoint}, base_models={}, prompts=prompts)
    assert not any(tmp_path.iterdir())
