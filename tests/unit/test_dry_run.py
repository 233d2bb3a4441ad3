"""`classroom run --dry-run`: the plan of a GPU configuration on this CPU machine, one
line per missing resource, models found in the places an engine would load them from,
and nothing started (the unit tier refuses Ray) or written."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import classroom

from classroom.launch import dry_run


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A Hugging Face cache of this test's own (none of this machine's models in it)."""
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    return hub


def test_the_gpu_plan_on_this_machine_names_each_missing_resource(tmp_path, empty_hub):
    runs = tmp_path / "runs"
    out = classroom("run", "--dry-run", "model=vllm_gpu", "experiment=supercorrect", env={"CLASSROOM_RUNS": str(runs)})
    assert out.returncode == 1, out.stderr
    assert not runs.exists() and not (Path.cwd() / "outputs").exists()
    plan, _, lacking = out.stdout.partition("missing on this machine")
    # The plan: both engines, the learners on the student's model, the stages counted.
    assert "teacher   vLLM engine: Qwen/Qwen2.5-7B-Instruct on 2 GPUs (tensor parallel) x 1 replica" in plan
    assert "student   vLLM engine: Qwen/Qwen2.5-0.5B-Instruct on 1 GPU x 2 replicas" in plan
    assert "env.sft: LoRALearner on Qwen/Qwen2.5-0.5B-Instruct; env.dpo: DPOLearner on Qwen/Qwen2.5-0.5B-Instruct" in plan
    # SuperCorrectConfig as experiment=supercorrect leaves it: 32 training problems x 2 solutions, 30 test problems.
    assert "stage 2: the student solves the training problems (2 samples each): 64 requests" in plan
    assert "the stage-2 student answers the test problems: 30 requests" in plan
    lines = [line.strip() for line in lacking.splitlines()[1:]]
    # vllm_gpu.yaml: the teacher on 2 GPUs (tensor parallel), the student on 1 GPU x 2 replicas.
    assert "GPUs: the engines ask for 4 (teacher 2 x 1, student 1 x 2) and the trainers 0; this machine has 0" in lines
    assert sum(line.startswith("model.models.") and "is not on this machine" in line for line in lines) == 2
    assert any(line.startswith("vLLM: model.models.teacher.engine.device is cuda") for line in lines)
    assert out.stdout.count("missing on this machine (") == 1 and f"({len(lines)}):" in out.stdout


def test_the_embedded_plan_lacks_nothing(tmp_path):
    out = classroom("run", "--dry-run", "env=supercorrect", "env.stage=sft", env={"CLASSROOM_RUNS": str(tmp_path / "runs")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing missing on this machine" in out.stdout
    # Stage 2 is not planned for plain SFT.
    assert "stage 2" not in out.stdout and "[learner]   stage 1: LoRA SFT on worked solutions" in out.stdout


def test_a_config_error_is_one_line_before_any_plan(tmp_path):
    out = classroom("run", "--dry-run", "experiment=supercorrect", "model=openai", "model.models.remote.endpoint.keyless=true")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "cannot load them" in out.stderr


@pytest.mark.parametrize(
    ("loop", "learners"),
    [
        (["env=supercorrect"], "env.sft: LoRALearner on /models/acme-1b; env.dpo: DPOLearner on /models/acme-1b"),
        (["env=lbt_m2"], "env.m2.dpo: DPOLearner on /models/acme-1b"),
        (["experiment=dataenvgym"], "student.learner: LoRALearner on /models/acme-1b"),
    ],
)
def test_an_endpoint_that_loads_adapters_trains_on_the_weights_it_names(loop, learners, tmp_path):
    """Every loop that trains adapters plans on an endpoint whose server loads them at run
    time (its lora_base_model set), and each learner trains that model, not the embedded
    one; the same configs without the setting stop in one line naming it (test_cli)."""
    remote = ["model=openai", "model.models.remote.endpoint.keyless=true", "model.models.remote.endpoint.lora_base_model=/models/acme-1b"]
    out = classroom("run", "--dry-run", *loop, *remote, env={"CLASSROOM_RUNS": str(tmp_path / "runs")})
    assert out.returncode in (0, 1) and out.stderr == "", out.stderr  # 1: the weights are not on this machine
    assert (
        "remote    OpenAI-compatible endpoint: embedded at http://127.0.0.1:8000/v1 (no key; loads LoRA adapters of /models/acme-1b"
        in out.stdout
    )
    assert f"learners  {learners}" in out.stdout, out.stdout


def test_a_model_is_looked_for_where_an_engine_would_load_it(tmp_path, empty_hub):
    # A hub model in the Hugging Face cache, as a download leaves it.
    snapshot = empty_hub / "models--acme--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"\0" * (1 << 20))
    (empty_hub / "models--acme--tiny" / "refs").mkdir()
    (empty_hub / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    found = dry_run.model_files("acme/tiny")
    assert found.found is not None and str(snapshot) in found.found and found.weights_gib == pytest.approx(1 / 1024)
    assert dry_run.model_files("acme/absent").found is None
    # A local folder: found with its config.json, not without.
    folder = tmp_path / "model"
    folder.mkdir()
    assert dry_run.model_files(str(folder)).found is None
    (folder / "config.json").write_text("{}")
    assert dry_run.model_files(str(folder)).found == str(folder.resolve())


def test_a_sweep_dry_run_checks_every_job_and_writes_no_folder(tmp_path, empty_hub):
    runs = tmp_path / "runs"
    out = classroom("sweep", "--dry-run", "sweep=supercorrect", "model=vllm_gpu", env={"CLASSROOM_RUNS": str(runs)})
    assert out.returncode == 1, out.stderr
    assert not runs.exists()
    # conf/sweep/supercorrect.yaml: env.stage sft,hsft_dpo x seed 0,1,2.
    jobs = [line for line in out.stdout.splitlines() if line.startswith("  job ")]
    assert len(jobs) == 6 and "env.stage=hsft_dpo seed=2" in jobs[-1]
    assert "engine pools: 1" in out.stdout
    # Each missing resource once, not once per job.
    assert out.stdout.count("GPUs: the engines ask for 4") == 1


def test_dataenvgym_counts_the_teachers_requests_when_the_teacher_model_makes_the_data():
    out = classroom("run", "--dry-run", "experiment=dataenvgym_llm_skill_list", "env.iterations=2", "env.examples_per_iteration=5")
    assert out.returncode == 0, out.stdout + out.stderr
    stages = [line for line in out.stdout.splitlines() if "[teacher]" in line]
    # Per iteration: one plan, one request per example written.
    assert [line.split(": ")[-1] for line in stages] == ["1 request", "5 requests"] * 2
    out = classroom("run", "--dry-run", "experiment=dataenvgym_skill_list", "env.iterations=2")
    assert "[teacher]" not in out.stdout and "reasoning-gym engine makes 24 examples" in out.stdout


def test_an_experiments_keys_include_those_of_the_experiments_it_extends():
    from classroom.launch.experiments import experiment_keys

    # dataenvgym_gpu_skill_list -> dataenvgym_llm_skill_list -> dataenvgym_skill_list ->
    # dataenvgym, which picks the task; the GPU file writes the trainer's GPU itself.
    keys, task = experiment_keys("dataenvgym_gpu_skill_list")
    assert task == "arithmetic_skills" and "student.learner.trainer_num_gpus" in keys
    assert experiment_keys("supercorrect") == (
        {"task.skills.chain_sum.four_1digit.min_terms", *keys_of_supercorrect()},
        "arithmetic_skills",
    )


def keys_of_supercorrect() -> set[str]:
    """conf/experiment/supercorrect.yaml's task.skills, written out by hand."""
    return {
        f"task.skills.chain_sum.{name}.{field}"
        for name in ("four_1digit", "six_1digit")
        for field in ("min_terms", "max_terms", "min_digits", "max_digits")
    }


def test_lbt_counts_each_students_exams():
    out = classroom(
        "run", "--dry-run", "experiment=lbt_m1", "class=arithmetic", "env.num_problems=5", "env.m1.samples=3", "env.m1.exam_size=2"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # 5 problems x 3 rationales x 2 exam problems = 30 conversations per student; the
    # teacher's 5 greedy and 5 sampled; a class of three: 5 + 5 + 3 x 30 = 100.
    assert "2 answers each: 30 requests per student" in out.stdout
    assert "model requests: 100 in all that the loop can count (3 students)" in out.stdout


def test_tom_counts_the_mental_models_simulations_per_student():
    out = classroom(
        "run",
        "--dry-run",
        "env/intervention=mental_model",
        "class=arithmetic",
        "env.num_problems=4",
        "env.seed_set_size=2",
        "env.post_test_size=3",
        "env.demo_counts=[0,1]",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # Per student: 2 + 4 + 3 alone, 2 + 4 with explanations, 2 simulations x 4 test
    # problems, up to 3 post-test answers with one demonstration: 26; three students:
    # 78; the teacher explains 2 + 4 once: 84.
    assert "rates each test problem: 8 requests per student" in out.stdout
    assert "model requests: up to 84 in all that the loop can count (3 students)" in out.stdout


def test_an_endpoints_url_credentials_stay_out_of_the_plan():
    out = classroom(
        "run",
        "--dry-run",
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "model.models.remote.endpoint.base_urls=[http://user:tok-planted-2718@127.0.0.1:1/v1]",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tok-planted-2718" not in out.stdout + out.stderr and "http://***@127.0.0.1:1/v1 (no key; not contacted)" in out.stdout


def test_a_dead_cluster_address_is_one_line_in_seconds():
    from support.ports import closed_port

    address = f"127.0.0.1:{closed_port()}"
    out = classroom("run", "--dry-run", f"cluster.address={address}")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == f"cluster error: cluster.address={address}: no Ray cluster answers there (Connection refused)"


LLM_TEACHER = "env.teacher._target_=classroom.environments.supercorrect.teachers.LLMTeacher"


@pytest.mark.parametrize("task", ["gsm8k", "svamp"])
@pytest.mark.parametrize(
    ("args", "stop"),
    [
        # Each loop's default experiment on a task it was not written for (issue #26 item
        # 6): its plan, or one line before any engine that says which setting works ...
        ([], None),  # tom
        (["experiment=lbt"], None),
        (["experiment=lbt_m2"], None),
        (["experiment=lbt_m3"], None),
        (
            ["experiment=dataenvgym"],
            "config error: env.engine: ReasoningGymEngine makes reasoning-gym problems and task '{task}' has none; use env/engine=llm",
        ),
        (
            ["experiment=supercorrect"],
            "experiment=supercorrect sets task.skills for its task arithmetic_skills: add ~task.skills to drop it",
        ),
        (
            ["experiment=supercorrect", "~task.skills"],
            "config error: env.teacher: the programmatic teacher works templates from reasoning-gym expressions, and task '{task}' has none; use the teacher model",
        ),
        # ... and the setting each line names, which then plans.
        (["experiment=dataenvgym", "env/engine=llm"], None),
        (["experiment=supercorrect", "~task.skills", LLM_TEACHER], None),
    ],
    ids=["tom", "lbt", "lbt_m2", "lbt_m3", "dataenvgym", "supercorrect", "supercorrect-skills", "dataenvgym-llm", "supercorrect-llm"],
)
def test_each_loop_on_gsm8k_and_svamp_plans_or_stops_in_one_line(args, stop, task, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(data_dir))
    out = classroom("run", "--dry-run", *args, f"task={task}", env={"CLASSROOM_RUNS": str(tmp_path / "runs")})
    assert "Traceback" not in out.stdout + out.stderr
    if stop is None:
        assert out.returncode == 0 and "nothing missing on this machine" in out.stdout, out.stdout + out.stderr
    else:
        assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
        assert out.stderr.startswith("config error: ") and stop.format(task=task) in out.stderr, out.stderr
