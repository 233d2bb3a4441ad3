"""On a real multi-node Ray cluster (three raylets on this machine): `ray job submit` of
an episode with classroom shipped through the job's runtime_env, engines pinned to
nodes by their resources, and a sweep that loses a worker node midway."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import LocalCluster

from classroom.serving.adapters import pack_adapter

# The default ToM episode, as small as it goes: what is tested is where it runs.
TINY_TOM = [
    "env.num_problems=2",
    "env.seed_set_size=1",
    "env.post_test_size=1",
    "env.budgets=[0,1]",
    "env.demo_counts=[0,1]",
    "student.sampling.max_tokens=24",
    "teacher.sampling.max_tokens=24",
    "progress=false",
]


@pytest.fixture(scope="module")
def cluster():
    # Head with the teacher's node label, a worker with the student's, a plain worker.
    nodes = LocalCluster([("head", {"teacher_node": 1}), ("student", {"student_node": 1}), ("plain", {"plain_node": 1})])
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """classroom's code as `classroom package` writes it, for the jobs' py_modules."""
    from classroom.launch.package import write_package

    return write_package(tmp_path_factory.mktemp("code"))


def test_a_submitted_job_ships_classroom_and_places_engines_on_their_nodes(cluster, shipped, tmp_path):
    run_dir = tmp_path / "run"
    # The entrypoint says where it imported classroom from: the shipped folder, not this
    # checkout's install (which the same machine's workers could otherwise see).
    entry = "import sys, classroom.launch.cli as cli; print('classroom from', cli.__file__, flush=True); sys.exit(cli.main(sys.argv[1:]))"
    out = cluster.submit(
        shipped,
        sys.executable,
        "-c",
        entry,
        "run",
        "model=embedded_pinned",
        "cluster=auto",
        *TINY_TOM,
        f"hydra.run.dir={run_dir}",
    )
    assert out.returncode == 0 and "succeeded" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
    # Actors' output reaches the job's log (cluster.log_to_driver): the engines' own lines.
    assert "(VLLMEngineHost pid=" in out.stdout
    assert "classroom from " in out.stdout and "runtime_resources/py_modules_files" in out.stdout.split("classroom from ", 1)[1].split()[0]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert {"events.jsonl", "metrics.jsonl", "config.yaml", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    # The log's header says where the engines run, before any message.
    header = json.loads((run_dir / "events.jsonl").read_text().splitlines()[0])
    assert header["kind"] == "header"
    assert header["placement"]["engine teacher#0"]["node_id"] == cluster.node_with("teacher_node")
    assert header["placement"]["engine student#0"]["node_id"] == cluster.node_with("student_node")
    where = summary["placement"]
    assert where["engine teacher#0"]["node_id"] == cluster.node_with("teacher_node")
    assert where["engine student#0"]["node_id"] == cluster.node_with("student_node")
    assert where["engine student#0"]["resources"]["student_node"] == 1  # what Ray gave it, recorded
    # Every agent is recorded (they are spawned SPREAD, which Ray treats as a preference:
    # on this cluster they have landed on one node as well as on several).
    agents = [label for label in where if not label.startswith("engine ")]
    assert len(agents) >= 3 and all(where[label].get("node_id") for label in agents)
    # Utilisation of each engine over the run, recorded and summarised.
    assert set(summary["engines"]) == {"teacher#0", "student#0"}
    assert all(0 < e["busy_fraction"] <= 1 and e["requests"] > 0 for e in summary["engines"].values())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {m["engine"] for m in metrics if m["name"] == "engine_busy_fraction"} == {"teacher#0", "student#0"}


def test_an_adapter_learned_on_one_node_is_kept_by_the_driver_and_served_on_another(cluster, shipped, tmp_path):
    run_dir = tmp_path / "run"
    job = Path(__file__).with_name("cluster_adapter_job.py")
    out = cluster.submit(
        shipped,
        sys.executable,
        str(job),
        str(run_dir),
    )
    assert out.returncode == 0 and "succeeded" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
    [line] = [line for line in out.stdout.splitlines() if line.startswith('{"driver_node"')]
    seen = json.loads(line)
    # Four processes on three nodes: the driver and the restored student on the head,
    # the learning student on `plain`, the engine on `student`.
    assert seen["driver_node"] == seen["restored_node"] == cluster.node_with("teacher_node")
    assert seen["student_node"] == cluster.node_with("plain_node")
    assert seen["engine_node"] == cluster.node_with("student_node")

    # The driver keeps the adapter in its run directory; the state names that folder.
    kept = run_dir / "adapter"
    assert seen["adapter_path"] == str(kept) and (kept / "adapter_config.json").is_file()
    assert seen["state"]["adapter_path"] == seen["state"]["trained_path"] == str(kept)
    digest = pack_adapter(kept).digest
    # The engine's node wrote the files it was sent into its own folder; no other node
    # holds them (the student's node never wrote a folder, the head's engine has none).
    assert (cluster.adapters_dir("student") / digest / "adapter_config.json").is_file()
    assert not cluster.adapters_dir("plain").exists() and not cluster.adapters_dir("head").exists()

    # The engine serves it: the student's answers changed to its examples' ...
    changed = sum(b != a for b, a in zip(seen["before"], seen["after"]))
    learned = sum(target in text for target, text in zip(seen["targets"], seen["after"]))
    assert changed >= 8 and learned >= 4, (seen["before"], seen["after"])
    # ... and the student rebuilt on the head from the run directory continues the same
    # adapter and answers the same.
    assert seen["learner_adapter"] == digest
    assert seen["restored"] == seen["after"]


def test_a_sweep_that_loses_a_worker_node_ends_with_every_job_completed_or_failed(cluster, shipped, tmp_path):
    root = tmp_path / "sweep"
    submitted = cluster.submit(
        shipped,
        sys.executable,
        "-m",
        "classroom.launch.cli",
        "sweep",
        "model=embedded_pinned",
        "cluster=auto",
        "seed=0,1,2",
        "sweep.max_concurrent=2",
        "sweep.max_retries=1",
        # No restarts: the student's engine dies with its node and stays dead (only
        # that node has its resource), so the jobs that need it fail, recorded.
        "model.models.student.engine.max_restarts=0",
        "model.models.student.engine.startup_timeout_s=20",
        *TINY_TOM,
        f"hydra.sweep.dir={root}",
        wait=False,
    )
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = submitted.stdout.split("Job '", 1)[1].split("'", 1)[0]
    # Kill the student's node once the sweep's engines are up and a job is under way.
    deadline = time.time() + 300
    while not any((root / str(n) / "events.jsonl").is_file() for n in range(3)):
        assert time.time() < deadline, "the sweep started no job"
        time.sleep(0.5)
    cluster.kill_node("student")
    logs = cluster.ray("job", "logs", f"--address={cluster.dashboard}", "--follow", job_id, timeout_s=600).stdout
    assert "[sweep] 3 jobs" in logs, logs[-3000:]
    statuses = {}
    for n in range(3):
        summary = json.loads((root / str(n) / "summary.json").read_text())
        statuses[n] = summary["status"]
        assert summary["status"] in ("completed", "failed")
        if summary["status"] == "failed":
            assert summary.get("error"), summary
    assert "failed" in statuses.values(), statuses  # the node's loss cost some job
    assert (root / "results.csv").is_file() and "did not complete" in logs


def test_the_cluster_configs_are_what_ray_and_classroom_accept():
    # `ray up`'s config against Ray's own schema; the RayJob's entrypoint composes.
    from pathlib import Path

    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    from classroom.launch.app import check_overrides

    folder = Path(__file__).parents[1] / "launch" / "cluster"
    validate_config(prepare_config(yaml.safe_load((folder / "ray-up.yaml").read_text())))
    job = yaml.safe_load((folder / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["rayClusterSpec"]["rayVersion"] == "2.60.0"
    words = job["spec"]["entrypoint"].split()
    assert words[:4] == ["python", "-m", "classroom.launch.cli", "run"]
    assert check_overrides(words[4:]) is None
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["py_modules"]
