"""SuperCorrect on the real engine: HSFT, a cross-model DPO pair build and step, and the
exported data loading back with `datasets`."""

from __future__ import annotations

import pytest
from support.cli import classroom

from classroom.environments.supercorrect.traces import (
    TraceParseError,
    parse_template,
)
from classroom.environments.tasks import reasoning_gym_skills

SKILLS = {
    "chain_sum": {"three": {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 2}},
    "products": {"two": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}},
}


# Two LoRA trainings and ~80 requests with adapters: ~4 min alone on 2 cores, more
# beside other work, over the suite's 600 s default.
@pytest.mark.timeout(1200)
async def test_both_stages_on_the_engine_and_the_data_loads_back(engine, tmp_path):
    """Both stages on the session engine, small: HSFT changes the student's answers
    toward templates, stage 2 builds cross-model pairs and a DPO step serves a new
    adapter; `classroom export` writes data that `datasets` loads back."""
    import datasets
    import ray

    from classroom.agents.learners import InContextLearner
    from classroom.agents.messages import Attempt, PreferencePair
    from classroom.agents.settings import StudentSettings, TeacherSettings
    from classroom.agents.students import Seat
    from classroom.environments.base import Episode, Roles
    from classroom.environments.recording import MemoryRecorder
    from classroom.environments.supercorrect import SuperCorrectConfig, SuperCorrectLoop
    from classroom.serving.pool import ModelPool, RoutedLLM

    pool = ModelPool({"embedded": RoutedLLM("embedded", [engine])}, {"teacher": "embedded", "student": "embedded"})
    recorder = MemoryRecorder()
    config = SuperCorrectConfig(
        train_problems=8,
        num_problems=6,
        localisation=4,
        solutions=2,
        answer_tokens=128,
        seed=1,
        sft={"_target_": "classroom.agents.learners.LoRALearner", "epochs": 3, "learning_rate": 2e-3, "batch_size": 4},
        dpo={"_target_": "classroom.agents.learners.DPOLearner", "nll_weight": 1.0, "epochs": 1},
    )
    episode = Episode(
        episode_id="sc",
        config=config,
        task=reasoning_gym_skills(SKILLS, size=20, seed=1),
        roles=Roles(TeacherSettings(), StudentSettings(), InContextLearner()),
        pool=pool,
        recorder=recorder,
        run_dir=tmp_path,
        students=(Seat("student", "student"),),
    )
    loop = SuperCorrectLoop()
    summary = await loop.run(episode, loop.spawn_agents(episode))

    attempts = [m for m in recorder.messages if isinstance(m, Attempt)]
    before = {a.problem_id: a.reasoning for a in attempts if a.phase == "test_untrained"}
    after = {a.problem_id: a.reasoning for a in attempts if a.phase == "test_stage1"}
    assert len(before) == len(after) == 6 and sum(before[i] != after[i] for i in before) >= 5

    def parses(text: str) -> bool:
        try:
            parse_template(text)
            return True
        except TraceParseError:
            return False

    assert sum(map(parses, after.values())) > sum(map(parses, before.values()))  # HSFT taught the format
    pairs = [m for m in recorder.messages if isinstance(m, PreferencePair)]
    assert summary["pairs"] == len(pairs) > 0, "stage 2 found no wrong solution to correct"
    for pair in pairs:
        assert pair.chosen.startswith("<Cause>") and pair.chosen != pair.rejected
        assert pair.prompt[0]["role"] == "system" and "Correct steps so far" in pair.prompt[1]["content"]
    assert "sc-stage2" in ray.get(engine.actor.info.remote())["adapters"] and (tmp_path / "stage2" / "adapter_config.json").is_file()
    assert summary["localisation"]["step_checker"]["accuracy"] == 1.0 and summary["localisation"]["step_checker"]["cases"] == 4
    # Every model's localisation replies are in the record, beside the constant-guess floor.
    located = [a for a in attempts if a.phase.startswith("locate_")]
    assert sorted({a.phase for a in located}) == ["locate_student_stage1", "locate_student_stage2", "locate_teacher"] and len(located) == 12
    assert 0.5 <= summary["localisation"]["constant_guess"]["accuracy"] <= 1.0

    exported = tmp_path / "exported"
    out = classroom("export", str(tmp_path), str(exported))
    assert out.returncode == 0, out.stderr
    sft = datasets.load_dataset(str(exported), "sft", split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(sft) == summary["train_examples"] and sft.column_names == ["prompt", "completion"]
    assert parse_template(sft[0]["completion"][0]["content"]).answer
    dpo = datasets.load_dataset(str(exported), "dpo", split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert dpo.column_names == ["prompt", "chosen", "rejected"] and len(dpo) == len(pairs)
    card = (exported / "README.md").read_text()
    assert "configs:" in card and "teacher: `programmatic`" in card
