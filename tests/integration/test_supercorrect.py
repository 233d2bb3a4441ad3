"""SuperCorrect on the real engine, both stages, in one run that is killed the moment
stage 1's checkpoint lands; `classroom resume` runs stage 2 from the checkpoint. The run
plays on the tier's engine over HTTP, as on an endpoint that loads LoRA adapters at run
time (`classroom serve --runtime-lora`): its adapters are trained here and sent to the
server by path. (An engine killed under an adapter is DataEnvGym's kill test: the restart
is the serving layer's, whichever loop calls.) The teacher is the teacher model (the
tier's 135M one) with the programmatic fallback: it is asked for every template and every
correction, and where its reply is unusable the programmatic one stands in, counted. The
tests read that one run: it survives and resumes, HSFT and the cross-model DPO step do
what they are for, the teacher model's templates and corrections and their fallbacks are
counted as logged, and `classroom export` writes data that `datasets` loads back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import classroom
from support.kills import each_answered_once, kill_run, logged, run_until, wait_for

from classroom.agents.messages import Attempt, ParseFailure, PreferencePair, TrainingRun
from classroom.environments.supercorrect import SuperCorrectLoop
from classroom.environments.supercorrect.traces import StudentCritique, TraceParseError, parse_template

LLM_TEACHER = "classroom.environments.supercorrect.teachers.LLMTeacher"
SKILLS = (
    "{chain_sum:{three:{min_terms:3,max_terms:4,min_digits:1,max_digits:2}},"
    "products:{two:{min_terms:2,max_terms:2,min_digits:1,max_digits:2}}}"
)
RUN = [
    "env=supercorrect",
    "env.stage=hsft_dpo",
    "task=arithmetic_skills",
    "~task.skills",
    f"+task.skills={SKILLS}",
    "seed=1",
    "env.train_problems=6",
    "env.num_problems=6",
    "env.localisation=4",
    "env.solutions=2",
    "env.answer_tokens=128",
    "env.localisation_tokens=32",
    "env.critique_tokens=64",
    "+env.sft.learning_rate=3e-3",
    "env.sft.epochs=2",
    "+env.sft.batch_size=4",
    "env.dpo.epochs=1",
    f"env.teacher._target_={LLM_TEACHER}",
    "+env.teacher.fallback=programmatic",
    "+env.teacher.max_tokens=96",
    "progress=false",
]


@dataclass(frozen=True)
class Resumed:
    run_dir: Path
    summary: dict
    before: list  # what the killed run had logged
    checkpointed: int  # how many of those its stage-1 checkpoint holds
    messages: list  # the log after the resume
    adapters: set[str]  # what the server listed once the resume was done
    stdout: str  # what `classroom resume` printed (the summary)


# The tier's engine over HTTP, taking adapters trained on the embedded model by path.
OVER_HTTP = ["model=openai", "model.models.remote.endpoint.keyless=true", "+model.models.remote.endpoint.lora_base_model=embedded"]


@pytest.fixture(scope="module")
def resumed(engine_url, tmp_path_factory) -> Iterator[Resumed]:
    import httpx

    def served() -> set[str]:
        return {m["id"] for m in httpx.get(f"{engine_url}/models").json()["data"]}

    runs = tmp_path_factory.mktemp("supercorrect")
    served_before = served()
    env = {"CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"}

    def trained(messages: list) -> bool:
        return any(isinstance(m, TrainingRun) for m in messages)

    try:
        run, run_dir = run_until(RUN, runs, trained, model=OVER_HTTP, env=env, timeout_s=420)
        wait_for(run, runs, lambda _: (run_dir / "checkpoint.json").is_file(), timeout_s=420)
        kill_run(run)
        before = logged(run_dir)
        checkpointed = SuperCorrectLoop().load_state(run_dir).events_logged
        out = classroom("resume", str(run_dir), env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        yield Resumed(run_dir, summary, before, checkpointed, logged(run_dir), served(), out.stdout)
    finally:
        # What the run loaded over HTTP, whether or not it got through: the tier's
        # engine goes on serving the other tests.
        for name in served() - served_before:
            httpx.post(f"{engine_url}/unload_lora_adapter", json={"lora_name": name})


# Two LoRA trainings and ~80 requests with adapters: ~6 min on 2 cores, over the
# suite's 600 s default beside other work (the first test pays it).
@pytest.mark.timeout(1200)
def test_a_supercorrect_run_killed_at_its_checkpoint_resumes_stage_2_on_an_endpoint_that_loads_adapters(resumed):
    summary, messages = resumed.summary, resumed.messages
    assert summary["status"] == "completed" and summary["test_problems"] == 6
    each_answered_once(messages, samples={"stage2_solve": 2})  # env.solutions
    assert sum(isinstance(m, TrainingRun) for m in messages) == 1  # stage 1 was not trained again
    # Stage 1 as the killed run logged it up to its checkpoint (kept, in order); what
    # it logged after that was set aside, and stage 2 came from the resume.
    n = resumed.checkpointed
    assert 0 < n <= len(resumed.before) and [m.id for m in messages[:n]] == [m.id for m in resumed.before[:n]]
    assert {a.phase for a in messages if isinstance(a, Attempt)} >= {"test_untrained", "test_stage1", "test_stage2"}
    assert {m.episode_id for m in messages if m.episode_id} == {summary["episode_id"]}


@pytest.mark.timeout(1200)
def test_hsft_teaches_the_template_and_a_dpo_step_on_correction_pairs_serves_a_new_adapter(resumed):
    summary, messages = resumed.summary, resumed.messages
    attempts = [m for m in messages if isinstance(m, Attempt)]
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
    pairs = [m for m in messages if isinstance(m, PreferencePair)]
    assert summary["pairs"] == len(pairs) > 0, "stage 2 found no wrong solution to correct"
    # Recounted from the log: each pair's rejected side is the student's own logged
    # critique of that step, tagged as the chosen side is; a critique without a cause
    # and a correction made no pair and is counted (and logged as a ParseFailure).
    critiques = {m.id: m for m in messages if isinstance(m, StudentCritique)}
    for pair in pairs:
        [critique] = [critiques[p] for p in pair.parents if p in critiques]
        assert critique.cause and critique.correction and critique.step >= 1
        assert pair.rejected == f"<Cause>{critique.cause}</Cause><Correction>{critique.correction}</Correction>"
        assert pair.chosen.startswith("<Cause>") and pair.chosen != pair.rejected
        assert pair.prompt[0]["role"] == "system" and "Correct steps so far" in pair.prompt[1]["content"]
    unparsed = [c for c in critiques.values() if c.cause is None or c.correction is None]
    assert summary["stage2"]["critique_unparsed"] == len(unparsed) == len(critiques) - len(pairs)
    assert {f.parents[0] for f in messages if isinstance(f, ParseFailure) and f.expected == "OwnCorrection"} == {c.id for c in unparsed}
    # Stage 2's DPO compares against the stage-1 policy it continues, as the paper's
    # does (TRL keeps a frozen copy of the initial adapter), not the base model.
    assert summary["dpo_reference"] == "the initial adapter"
    # Each test was answered by the weights of its stage: the base model, stage 1's
    # adapter, stage 2's (the reply names what answered it), which the server lists.
    episode = summary["episode_id"]
    assert {phase: {a.usage.model for a in attempts if a.phase == phase} for phase in ("test_untrained", "test_stage1", "test_stage2")} == {
        "test_untrained": {"embedded"},
        "test_stage1": {f"{episode}-stage1"},
        "test_stage2": {f"{episode}-stage2"},
    }
    assert f"{episode}-stage2" in resumed.adapters
    assert (resumed.run_dir / "stage2" / "adapter_config.json").is_file()
    assert summary["localisation"]["step_checker"]["accuracy"] == 1.0 and summary["localisation"]["step_checker"]["cases"] == 4
    # Every model's localisation replies are in the record, beside the constant-guess floor.
    located = [a for a in attempts if a.phase.startswith("locate_")]
    assert sorted({a.phase for a in located}) == ["locate_student_stage1", "locate_student_stage2", "locate_teacher"] and len(located) == 12
    assert (
        max(a.usage.completion_tokens for a in located) <= 32 < max(a.usage.completion_tokens for a in attempts)
    )  # env.localisation_tokens
    assert 0.5 <= summary["localisation"]["constant_guess"]["accuracy"] <= 1.0


@pytest.mark.timeout(1200)
def test_the_dpo_step_changed_the_student(resumed):
    """The stage-2 answers came from the DPO adapter and differ from stage 1's on some
    test problem."""
    episode_id = resumed.summary["episode_id"]
    attempts = [m for m in resumed.messages if isinstance(m, Attempt)]
    stage1 = {a.problem_id: a for a in attempts if a.phase == "test_stage1"}
    stage2 = {a.problem_id: a for a in attempts if a.phase == "test_stage2"}
    assert {a.usage.model for a in stage1.values()} == {f"{episode_id}-stage1"}
    assert {a.usage.model for a in stage2.values()} == {f"{episode_id}-stage2"}
    assert stage1.keys() == stage2.keys() and any(stage1[i].reasoning != stage2[i].reasoning for i in stage1)


@pytest.mark.timeout(1200)
def test_the_exported_sft_and_dpo_data_load_back_with_datasets(resumed, tmp_path):
    import datasets

    summary, run_dir = resumed.summary, resumed.run_dir
    pairs = [m for m in resumed.messages if isinstance(m, PreferencePair)]
    exported = tmp_path / "exported"
    out = classroom("export", str(run_dir), str(exported))
    assert out.returncode == 0, out.stderr
    sft = datasets.load_dataset(str(exported), "sft", split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(sft) == summary["train_examples"] and sft.column_names == ["prompt", "completion"]
    assert parse_template(sft[0]["completion"][0]["content"]).answer
    dpo = datasets.load_dataset(str(exported), "dpo", split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert dpo.column_names == ["prompt", "chosen", "rejected"] and len(dpo) == len(pairs)
    card = (exported / "README.md").read_text()
    assert "configs:" in card and "teacher: `llm`" in card


@pytest.mark.timeout(1200)
def test_the_teacher_model_writes_templates_and_the_programmatic_fallback_is_counted(resumed):
    """Stage 1 asked the teacher model for every problem's template and checked each one:
    each that did not check out is logged as dropped, with its reply, and the fallback's
    templates are counted as such (recounted from the log)."""
    from classroom.environments.supercorrect.traces import ThoughtTemplate

    summary, messages = resumed.summary, resumed.messages
    templates = [m for m in messages if isinstance(m, ThoughtTemplate)]
    dropped = [m for m in messages if isinstance(m, ParseFailure) and m.sender == "llm" and m.expected == "ThoughtTemplate"]
    # Twelve problems asked (6 training, 6 test): each template is the model's or the fallback's.
    assert summary["templates"]["asked"] == 12 == len(templates) + len(dropped) - summary["templates"]["fallbacks"]
    assert summary["templates"]["fallbacks"] == sum(t.sender == "programmatic" for t in templates)
    assert summary["templates"]["dropped"] == len(dropped) and all(d.raw_text for d in dropped)
    assert summary["tokens"]["llm"] > 0  # the teacher model was asked
    assert (
        f"({summary['templates']['fallbacks']} written by the programmatic fallback)" in resumed.stdout
        or not summary["templates"]["fallbacks"]
    )


@pytest.mark.timeout(1200)
def test_the_teacher_model_corrects_in_stage_2_and_its_fallbacks_are_counted(resumed):
    """Stage 2 asked the teacher model about each wrong solution in the template format:
    each answer is its own usable correction or a logged reply, and where the step checker
    placed the error the programmatic correction stands in for an unusable reply; the
    counts in the summary are those of the log."""
    from classroom.environments.supercorrect.traces import CorrectionTrace

    summary, messages = resumed.summary, resumed.messages
    stage2 = summary["stage2"]
    asked = stage2["wrong"] - stage2["unparsed"]  # wrong solutions the teacher was shown
    assert asked > 0, "stage 2 had no wrong solution in the template format to correct"
    traces = [m for m in messages if isinstance(m, CorrectionTrace)]
    by_model = [t for t in traces if t.sender == "llm"]
    by_fallback = [t for t in traces if t.sender == "programmatic"]
    assert len(by_model) + len(by_fallback) == len(traces) == asked - stage2["uncorrected"]
    assert all(t.cause and t.correction for t in traces)
    replies = [m for m in messages if isinstance(m, ParseFailure) and m.expected == "Correction"]
    assert all(r.sender == "llm" and r.raw_text is not None for r in replies)
    # Every solution shown got the model's usable correction or left its reply in the log.
    assert len(by_model) + len(replies) == asked
    assert {t.attempt_id for t in by_model}.isdisjoint(r.parents[0] for r in replies)
    replaced = [r for r in replies if r.error.endswith("the programmatic correction stands in for it")]
    assert {r.parents[0] for r in replaced} == {t.attempt_id for t in by_fallback}
    assert stage2["correction_fallbacks"] == len(by_fallback) and stage2["correction_unparsed"] == len(replies) - len(replaced)
    assert summary.get("counts", {}).get("fallbacks", {}).get("programmatic_corrections", 0) == len(by_fallback)


async def test_the_teacher_model_corrects_a_broken_step_or_leaves_it_uncorrected(engine):
    """LLMTeacher.correct on the tier's engine: a template with its first step broken by
    hand; the step checker places the error, the teacher model words it (or its reply
    has no tags and the step stays uncorrected, as stage 2 counts it)."""
    from classroom.environments.supercorrect.teachers import Correction, LLMTeacher, ProgrammaticTeacher, Uncorrected
    from classroom.environments.tasks import reasoning_gym_skills
    from classroom.serving.pool import RoutedLLM

    task = reasoning_gym_skills(
        {"chain_sum": {"three": {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1}}}, size=4, seed=0
    )
    problem = task.split("train")[0]
    reference = ProgrammaticTeacher().template(problem)
    assert reference is not None and len(reference.steps) >= 2
    first = reference.steps[0]
    value = first.text.rsplit("=", 1)[1].strip().rstrip(".")
    broken = reference.model_copy(
        update={"steps": (first.model_copy(update={"text": first.text.replace(f"= {value}", f"= {int(value) + 1}")}), *reference.steps[1:])}
    )
    before = (await engine.stats()).requests
    correction = await LLMTeacher(max_tokens=64).correct(problem, broken, reference, RoutedLLM("embedded", [engine]))
    assert (await engine.stats()).requests == before + 1  # one request to the teacher model
    # The checker placed the step: the model's correction of it, or its reply and why it
    # is unusable (stage 2 logs that as a ParseFailure).
    if isinstance(correction, Uncorrected):
        assert correction.raw_text and correction.reason in {"no <Cause>", "no <Correction>", "no <Cause> and no <Correction>"}
    else:
        assert isinstance(correction, Correction)
        assert correction.step == 1 and correction.decided_by != "teacher" and correction.cause and correction.correction
