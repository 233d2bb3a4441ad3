"""DataEnvGym on the real engine: reset/step contracts per variant, the quality checks,
a LoRA-trained 1-iteration episode with the adapter hot-loaded, the teacher-model
parts, and `classroom resume` after a kill between iterations."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.cli import CLASSROOM, classroom

from classroom.agents.actors import spawn
from classroom.agents.grading import Grader
from classroom.agents.learners import InContextLearner
from classroom.agents.messages import Attempt, Problem, TrainingExample, TrainingRun
from classroom.agents.roles import Student
from classroom.agents.settings import StudentSettings, TeacherSettings
from classroom.agents.skills import TeacherSkills
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import Episode, Roles
from classroom.environments.dataenvgym import CHECKPOINT, DataEnvAgents, DataEnvConfig, DataEnvGym, DataEnvGymLoop
from classroom.environments.dataenvgym.agent import DataGenerator
from classroom.environments.dataenvgym.engines import LLMDataEngine, ReasoningGymEngine
from classroom.environments.dataenvgym.policies import BanditTreePolicy, ErrorDrivenPolicy, LLMPolicy, WeakSkillsPolicy, builtin_policy
from classroom.environments.dataenvgym.types import AgentAction, DataPlan, DataRequest, Exploit, Explore
from classroom.environments.eventlog import read_events
from classroom.environments.tasks import reasoning_gym_skills
from classroom.launch.rundir import RunDirectory
from classroom.serving.pool import ModelPool, RoutedLLM

CATALOGUE = {
    "chain_sum": {
        "two_1digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
        "two_2digit": {"min_terms": 2, "max_terms": 2, "min_digits": 2, "max_digits": 2},
    },
    "products": {"one_digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
}
SYSTEM = 'Solve the problem. End with "The answer is N."'
POLICIES = {"open_ended": ErrorDrivenPolicy, "skill_list": WeakSkillsPolicy, "skill_tree": BanditTreePolicy}


def make_agents(engine, variant: str, *, learner=None, actors=False) -> DataEnvAgents:
    """The three agents, as Ray actors or as plain objects, behind the one transport."""
    llm = RoutedLLM("embedded", [engine])
    student_args = {
        "episode_id": "ep",
        "learner": learner or InContextLearner(k=2),
        "sampling": {"max_tokens": 40},
        "prompts": {"system": SYSTEM},
    }
    generator_args = {"policy": POLICIES[variant](), "engine": ReasoningGymEngine(CATALOGUE), "episode_id": "ep"}
    if actors:
        student, generator, grader = spawn(Student, llm, **student_args), spawn(DataGenerator, llm, **generator_args), spawn(Grader)
    else:
        student, generator, grader = Student(llm, **student_args), DataGenerator(llm, **generator_args), Grader()
    return DataEnvAgents(generator=Agent(generator), student=StudentAgent(student), grader=Agent(grader))


def settings(variant: str, **config) -> DataEnvConfig:
    return DataEnvConfig(**{"variant": variant, "iterations": 2, "examples_per_iteration": 8, "val_size": 6, "test_size": 4, **config})


def make_env(engine, run_dir: Path, variant: str, *, learner=None, actors=False, **config):
    agents = make_agents(engine, variant, learner=learner, actors=actors)
    recorder = RunDirectory(run_dir, {"test": variant}, loop="dataenvgym", show_progress=False)
    env = DataEnvGym(
        settings(variant, **config),
        reasoning_gym_skills(CATALOGUE, size=8, seed=0),
        generator=agents.generator,
        student=agents.student,
        grader=agents.grader,
        recorder=recorder,
        run_dir=run_dir,
        episode_id="ep",
    )
    return env, agents.generator, recorder


@pytest.mark.parametrize("variant", ["open_ended", "skill_list", "skill_tree"])
async def test_reset_and_step_contract(variant, engine, tmp_path):
    env, generator, recorder = make_env(engine, tmp_path, variant)
    obs = await env.reset()
    assert obs.iteration == 0 and obs.variant == variant and obs.budget == 8
    assert len(obs.attempts) == len(obs.problems) == 6 and all(a.correct is not None for a in obs.attempts)
    report = obs.report.report
    assert report.count == 6 and report.correct == sum(bool(a.correct) for a in obs.attempts)
    assert obs.report.accuracy == pytest.approx(report.correct / 6)
    assert sum(s.count for s in report.children) == 6
    assert all(s.count == sum(c.count for c in s.children) for s in report.children)
    assert {p.id for p in obs.problems}.isdisjoint({p.id for p in env.test})

    action = await generator.call(DataGenerator.act, obs)
    plan = action.plan
    if variant == "open_ended":
        assert isinstance(plan, DataPlan) and plan.count == 8 and not plan.allocations
        assert set(plan.like_problem_ids) <= {p.id for p in obs.problems}
        wrong = {a.problem_id for a in obs.attempts if not a.correct}
        assert set(plan.like_problem_ids) <= wrong or not wrong
    elif variant == "skill_list":
        assert isinstance(plan, DataPlan) and sum(plan.allocations.values()) == 8
        assert set(plan.allocations) == {"chain_sum", "products"}
    else:
        assert isinstance(plan, Explore) and {s.split("/")[0] for s in plan.new_subskills} == {"chain_sum", "products"}
    assert len(action.examples) == 8
    assert all(e.iteration == 1 and e.parents == (plan.id,) and e.episode_id == "ep" for e in action.examples)

    result = await env.step(action)
    assert result.observation.iteration == 1 and not result.done
    assert result.reward == pytest.approx(result.observation.report.accuracy - obs.report.accuracy)
    assert set(result.skill_rewards) == set(obs.report.per_skill_accuracy)
    assert result.kept + result.dropped == 8 and result.observation.examples_so_far == result.kept
    folder = tmp_path / "iterations" / "001"
    kept = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    dropped = [json.loads(line) for line in (folder / "dropped.jsonl").read_text().splitlines()]
    assert len(kept) == result.kept and len(dropped) == result.dropped
    assert all(d["drop_reason"] for d in dropped) and all(k["kept"] and k["drop_reason"] is None for k in kept)
    # The loop's checkpoint is one write of the whole state, read back as written.
    loop = DataEnvGymLoop()
    from classroom.environments.dataenvgym.loop import DataEnvCheckpoint

    written = DataEnvCheckpoint(
        env=env.snapshot(), student=await env.student.call(Student.save_state), generator=await generator.call(DataGenerator.save_state)
    )
    loop.save_state(tmp_path, written)
    assert loop.load_state(tmp_path).model_dump_json() == written.model_dump_json() and loop.episode_id_of(written) == "ep"
    assert written.env.iteration == 1 and len(written.env.data) == result.kept
    assert not (tmp_path / (CHECKPOINT + ".tmp")).exists()
    if variant == "skill_tree":
        assert result.observation.tree and all(n > 0 for subs in result.observation.tree.values() for n in subs.values())

    result = await env.step(await generator.call(DataGenerator.act, result.observation))
    assert result.done and result.observation.iteration == 2
    with pytest.raises(RuntimeError, match="the episode is done"):
        await env.step(action)
    recorder.close()


async def test_quality_checks_drop_bad_data_with_reasons(engine, tmp_path):
    env, _, recorder = make_env(engine, tmp_path, "skill_list", iterations=1)
    obs = await env.reset()
    made = (await ReasoningGymEngine(CATALOGUE).generate([DataRequest(skill="chain_sum/two_2digit", count=6)], None, seed=5)).examples
    crafted = [
        TrainingExample(prompt=obs.problems[0].question, completion="The answer is 1.", answer=obs.problems[0].answer),
        TrainingExample(prompt="What is 2 + 3?", completion="2 + 3 = 6. The answer is 5.", answer="5"),
        TrainingExample(prompt="What is 4 + 4?", completion="The answer is 8.", answer=""),
        TrainingExample(prompt="What is 7 + 1?", completion="7 + 1 = 8. The answer is 8.", answer="8"),
        TrainingExample(prompt="What is 7 + 1?", completion="7 + 1 = 8. The answer is 8.", answer="8"),
        # Right steps that reach 5, and an appended line that says 6: the old check
        # (the final answer against the annotated one) read only that line and kept it.
        TrainingExample(prompt="What is 2 + 4?", completion="2 + 3 = 5. The answer is 6.", answer="6"),
        # Only the appended line: nothing of its own reaches the answer.
        TrainingExample(prompt="What is 9 + 9?", completion="The answer is 18.", answer="18"),
    ]
    result = await env.step(AgentAction(plan=DataPlan(allocations={"chain_sum": 6}), examples=tuple(crafted + made)))
    _, messages = read_events(tmp_path / "events.jsonl")
    checked = {m.id: m for m in messages if isinstance(m, TrainingExample)}
    reasons = [checked[e.id].drop_reason for e in crafted]
    assert reasons[0] == "same question as an evaluation problem"
    assert reasons[1] == "worked solution step '2 + 3 = 6' is wrong (the sides are 5 = 6)"
    assert reasons[2] == "no question or no annotated answer"
    assert reasons[4] == "duplicate of another example"
    assert reasons[5] == "the worked solution reaches '5', not the annotated '6'"
    assert reasons[6] == "the worked solution reaches no answer of its own (only the appended answer line)"
    # The programmatic engine's worked solutions pass: only the student check may drop them.
    assert all(checked[e.id].drop_reason in (None, "the student already answers it") for e in made)
    assert result.kept + result.dropped == len(crafted) + len(made)
    # "already answers it" is what the student, asked again, really does.
    known = [checked[e.id] for e in [crafted[3], *made] if checked[e.id].drop_reason in (None, "the student already answers it")]
    problems = [env_problem(e) for e in known]
    attempts = await Grader().grade_attempts(
        problems, await env.student.call(Student.answer, problems, phase="again", use_memory=False, base=True)
    )
    # The check ran before training, i.e. as the untrained student answers.
    for example, attempt in zip(known, attempts):
        assert example.kept == (not attempt.correct), (example.prompt, attempt.reasoning)
    recorder.close()


def env_problem(example: TrainingExample):
    return Problem(id=example.id, question=example.prompt, answer=example.answer or "", metadata=example.metadata)


async def test_one_lora_iteration_end_to_end_hot_loads_the_adapter(engine, tmp_path):
    """Actors, the real engine, a real LoRA step; the adapter is served without a restart."""
    import ray

    from classroom.agents.learners import LoRALearner

    actor_id = engine.actor._actor_id.hex()
    learner = LoRALearner(base_model="embedded", epochs=3, learning_rate=2e-3, batch_size=4)
    agents = make_agents(engine, "skill_list", learner=learner, actors=True)
    recorder = RunDirectory(tmp_path, {"test": True}, loop="dataenvgym", show_progress=False)
    pool = ModelPool({"embedded": RoutedLLM("embedded", [engine])}, {"teacher": "embedded", "student": "embedded"})
    episode = Episode(
        episode_id="ep",
        config=settings("skill_list", iterations=1, examples_per_iteration=8, drop_known=False),
        task=reasoning_gym_skills(CATALOGUE, size=8, seed=0),
        roles=Roles(TeacherSettings(), StudentSettings(), learner),
        pool=pool,
        recorder=recorder,
        run_dir=tmp_path,
    )
    summary = (await DataEnvGymLoop().run(episode, agents)).summary()
    recorder.close()

    assert summary["iterations"] == 1 and summary["examples_kept"] == 8
    [run] = [m for m in read_events(tmp_path / "events.jsonl")[1] if isinstance(m, TrainingRun)]
    assert run.adapter == "ep-it1" and run.examples == 8 and run.train_loss is not None
    assert Path(run.adapter_path, "adapter_config.json").is_file()
    assert run.adapter_path == str(tmp_path / "iterations" / "001" / "adapter")
    # Loaded into the running engine: same actor, adapter listed, answers use it.
    assert engine.actor._actor_id.hex() == actor_id
    assert "ep-it1" in ray.get(engine.actor.info.remote())["adapters"]
    examples = [
        TrainingExample.model_validate_json(line) for line in (tmp_path / "iterations" / "001" / "examples.jsonl").read_text().splitlines()
    ]
    problems = [env_problem(e) for e in examples]
    trained = await Grader().grade_attempts(problems, await agents.student.call(Student.answer, problems, phase="x"))
    untrained = await Grader().grade_attempts(problems, await agents.student.call(Student.answer, problems, phase="x", base=True))
    assert [a.reasoning for a in trained] != [a.reasoning for a in untrained]
    assert sum(bool(a.correct) for a in trained) > sum(bool(a.correct) for a in untrained)
    # The SFT data in TRL's prompt-completion format, as the student is asked.
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["prompt"][0] == {"role": "system", "content": SYSTEM}
    assert rows[0]["completion"][0]["content"] == examples[0].completion
    assert summary["scores"]["val@1"] == summary["val_accuracy_by_iteration"]["1"]
    checkpoint = DataEnvGymLoop().load_state(tmp_path)  # written after the step, whole
    assert checkpoint.env.iteration == 1 and checkpoint.student["adapter"] == "ep-it1"


async def test_teacher_model_parts_parse_or_record(engine, tmp_path):
    """Skill discovery, the LLM policy and the LLM engine on the real (small) teacher."""
    llm = RoutedLLM("embedded", [engine])
    task = reasoning_gym_skills(CATALOGUE, size=4, seed=0)
    problems = task.split("train")[:4]
    generator = DataGenerator(llm, policy=WeakSkillsPolicy(), engine=ReasoningGymEngine(CATALOGUE), skills=TeacherSkills(max_categories=2))
    discovered = await generator.discover_skills(problems)
    labelled = discovered.problems
    assert discovered.tokens > 0  # counted as the data generator's in the episode's tokens
    assert len(labelled) == 4 and all(p.skills and p.skills[0] for p in labelled)
    assert len({p.skills[0] for p in labelled}) <= 3  # two categories, or "other"
    # A label merged into another category stays as its sub-skill.
    assert all(len(p.skills) == 1 or p.skills[1].startswith(p.skills[0] + "/") for p in labelled)
    assert [p.question for p in labelled] == [p.question for p in problems]

    # The teacher writes problems with the schema's constraint: they parse into examples.
    engine_ = LLMDataEngine(max_tokens=160)
    made = await engine_.generate(
        [DataRequest(skill="chain_sum", count=2), DataRequest(count=1, instructions="Practise sums.", like=tuple(problems[:2]))],
        llm,
        seed=0,
    )
    assert len(made.examples) + len(made.failures) == 3 and made.tokens > 0
    assert made.examples, [f.error for f in made.failures]
    assert all(e.prompt and e.answer and e.source for e in made.examples)
    # Out of tokens, a reply cannot be whole JSON: each is a recorded failure, none a crash.
    starved = await LLMDataEngine(max_tokens=4).generate([DataRequest(skill="chain_sum", count=2)], llm, seed=0)
    assert not starved.examples and len(starved.failures) == 2
    assert all(f.error.startswith("after repair") and f.expected == "_WrittenProblem" for f in starved.failures)

    env, _, recorder = make_env(engine, tmp_path, "skill_tree")
    obs = await env.reset()
    for variant, kinds in [("open_ended", (DataPlan,)), ("skill_list", (DataPlan,)), ("skill_tree", (Explore, Exploit))]:
        policy = LLMPolicy(max_tokens=64)  # the variant comes from the observation
        planned = await policy.plan(obs.model_copy(update={"variant": variant}), llm)
        action = planned.action
        assert isinstance(action, kinds) and planned.tokens > 0
        if not planned.failures:  # the model planned: its plan, not a built-in's
            assert action.sender == "llm"
        else:  # it did not: recorded, and the variant's built-in planned instead
            assert action.sender == builtin_policy(variant).name
    # The open-ended plan has no skill names to get wrong: the model's own words.
    planned = await LLMPolicy(max_tokens=64).plan(obs.model_copy(update={"variant": "open_ended"}), llm)
    assert not planned.failures and planned.action.sender == "llm" and planned.action.instructions
    # A reply cut off before it parses falls back, counted by the agent's action.
    generator = DataGenerator(llm, policy=LLMPolicy(max_tokens=3), engine=ReasoningGymEngine(CATALOGUE))
    action = await generator.act(obs.model_copy(update={"variant": "skill_list"}))
    assert action.fallbacks == 1 and action.plan.sender == "weak_skills" and action.notes[0].expected == "_SkillPlan"
    recorder.close()


def test_resume_after_a_kill_the_moment_the_first_checkpoint_lands(engine_url, tmp_path):
    """`classroom run` is killed (SIGKILL, driver and its Ray) as soon as a checkpoint file
    exists: the window where the old two-write checkpoint held no student state. The
    checkpoint read back is whole, and `classroom resume` finishes the episode from it.
    The student is a LoRA student served by an endpoint that loads adapters at run time
    (the tier's HTTP door, with lora_base_model): each adapter is trained on the
    embedded weights and sent to the server by its path, the resumed run's too."""
    env = {**os.environ, "CLASSROOM_RUNS": str(tmp_path), "CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"}
    args = [
        "experiment=dataenvgym_skill_tree",
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "model.models.remote.endpoint.lora_base_model=embedded",
        "env.iterations=2",
        "env.val_size=4",
        "env.test_size=4",
        "env.examples_per_iteration=4",
        "task.size=6",
        "student.sampling.max_tokens=32",
        "+student.learner.epochs=1",
        "progress=false",
        "cluster.num_cpus=1",
    ]
    proc = subprocess.Popen(
        [*CLASSROOM, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    checkpoint = None
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list(tmp_path.glob("*/" + CHECKPOINT))
        if found:
            checkpoint = found[0]
            os.killpg(proc.pid, signal.SIGKILL)  # at once: no waiting for a "complete" state
            break
        # Wait on the child itself (not a blind sleep): a run that ends early fails here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
            pytest.fail(f"the run ended before its first checkpoint: {proc.stderr.read()[-3000:]}")
    assert checkpoint is not None, "no checkpoint within 240 s"
    proc.wait(timeout=60)
    run_dir = checkpoint.parent
    state = DataEnvGymLoop().load_state(run_dir)  # whole, whatever moment the kill hit
    assert state.env.episode_id and "learner" in state.student
    killed_at = state.env.iteration
    assert not (run_dir / "summary.json").is_file() or json.loads((run_dir / "summary.json").read_text())["status"] != "completed"

    out = classroom("resume", str(run_dir), env=env)  # in this process: the resume reads only the folder
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed" in out.stdout  # the table title says after which iteration (rich may wrap it)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["iterations"] == 2 and summary["resumed_from"] == killed_at
    assert [row["iteration"] for row in summary["history"]] == [0, 1, 2]
    header, messages = read_events(run_dir / "events.jsonl")  # one log, still readable
    assert header["kind"] == "header" and header["loop"] == "dataenvgym"
    assert {m.episode_id for m in messages if m.episode_id} == {summary["episode_id"]}
    assert len({m.id for m in messages}) == len(messages)  # nothing logged twice
    # The last adapter is served by the endpoint (its own list says so) and answered the
    # final test under its name: the server's reply names the model that answered.
    [*_, last] = [m for m in messages if isinstance(m, TrainingRun)]
    served = {m["id"] for m in httpx.get(f"{engine_url}/models").json()["data"]}
    try:
        assert last.adapter in served
        final = [a for a in messages if isinstance(a, Attempt) and a.phase == "test"]
        assert final and {a.usage.model for a in final} == {last.adapter}
    finally:  # only what this run sent: the engine's own adapters (the tier's) stay
        for name in {m.adapter for m in messages if isinstance(m, TrainingRun) and m.adapter} & served:
            httpx.post(f"{engine_url}/unload_lora_adapter", json={"lora_name": name})
