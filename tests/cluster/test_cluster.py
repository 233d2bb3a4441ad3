"""On a real multi-node Ray cluster (raylets on this machine): `ray job submit` of a
sweep with classroom shipped through the job's runtime_env, engines pinned to nodes by
their resources, which loses the node of an engine midway; an adapter trained on one
node, kept by the driver on another and served on a third."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.cli import CLASSROOM
from support.ray_cluster import LocalCluster

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


def test_a_dry_run_checks_the_engines_resources_against_the_cluster_it_would_join(cluster):
    """`classroom run --dry-run cluster.address=...` reads the cluster's nodes: the pinned
    engines' labels are there; a label no node has is named, with the cluster's count."""
    pinned = ["run", "--dry-run", "model=embedded_pinned", f"cluster.address={cluster.address}"]
    out = subprocess.run([*CLASSROOM, *pinned], env=cluster.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # Three raylets of one CPU each (the fixture), nothing missing on them.
    assert f"resources the cluster at {cluster.address}: 3 CPUs" in out.stdout and "nothing missing" in out.stdout
    out = subprocess.run(
        [*CLASSROOM, *pinned, "+model.models.teacher.engine.resources.big_node=1"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"resources: model.models.teacher.engine.resources asks big_node=1 and the cluster at {cluster.address} has 0" in out.stdout


def test_an_adapter_learned_on_one_node_is_kept_by_the_driver_and_served_on_another(cluster, shipped, tmp_path):
    run_dir = tmp_path / "run"
    job = Path(__file__).parents[1] / "support" / "cluster_adapter_job.py"
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


def test_a_submitted_sweep_ships_classroom_places_engines_and_outlives_its_student_engines_node(cluster, shipped, tmp_path):
    """`ray job submit` of a sweep with classroom shipped through the job's runtime_env:
    engines pinned to their nodes (the log's header says where), and when the node of
    the student's engine dies (no restarts: dead for good) the sweep starts the models
    again on a node that has the label and every job completes."""
    student_node = cluster.node_with("student_node")
    # A spare node with the student's label, as an autoscaler would bring.
    cluster.add_node("spare", {"student_node": 1, "spare_node": 1})
    spare_node = cluster.node_with("spare_node")
    root = tmp_path / "sweep"
    # The entrypoint says where it imported classroom from: the shipped folder, not this
    # checkout's install (which the same machine's workers could otherwise see).
    entry = "import sys, classroom.launch.cli as cli; print('classroom from', cli.__file__, flush=True); sys.exit(cli.main(sys.argv[1:]))"
    submitted = cluster.submit(
        shipped,
        sys.executable,
        "-c",
        entry,
        "sweep",
        "model=embedded_pinned",
        "cluster=auto",
        "seed=0,1",
        "sweep.max_concurrent=2",
        "sweep.max_retries=1",
        "model.models.student.engine.max_restarts=0",
        *TINY_TOM,
        f"hydra.sweep.dir={root}",
        wait=False,
    )
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = submitted.stdout.split("Job '", 1)[1].split("'", 1)[0]
    # Once the engines are up (a job's log header says where they run, before any
    # message), kill the node of the student's engine: the jobs under way lose it.
    deadline = time.time() + 300
    while not (header := _placed_header(root)):
        assert time.time() < deadline, "the sweep placed no engine"
        time.sleep(0.5)
    assert header["placement"]["engine teacher#0"]["node_id"] == cluster.node_with("teacher_node")
    teacher_engine = header["placement"]["engine teacher#0"]["pid"]
    # The pool's ledger lives on the driver's node (a job's driver runs on the head):
    # placed anywhere else it can die with an engine's node and take the pool with it.
    from ray.util.state import list_actors

    ledgers = [
        a
        for a in list_actors(address=cluster.dashboard, filters=[("state", "=", "ALIVE")])
        if (a.name or "").startswith("classroom-ledger-")
    ]
    assert [a.node_id for a in ledgers] == [cluster.node_with("teacher_node")], ledgers
    lost = header["placement"]["engine student#0"]["node_id"]
    assert lost in (student_node, spare_node)
    cluster.kill_node("spare" if lost == spare_node else "student")
    survivor = student_node if lost == spare_node else spare_node

    logs = cluster.ray("job", "logs", f"--address={cluster.dashboard}", "--follow", job_id, timeout_s=600).stdout
    status = cluster.ray("job", "status", f"--address={cluster.dashboard}", job_id).stdout
    assert "succeeded" in status, status + logs[-3000:]
    # Actors' output reaches the job's log (cluster.log_to_driver): the engines' own lines.
    assert "(VLLMEngineHost pid=" in logs
    assert "classroom from " in logs and "runtime_resources/py_modules_files" in logs.split("classroom from ", 1)[1].split()[0]
    assert "engine student#0 died for good: starting its models again" in logs, logs[-3000:]
    assert "stopped by a fault" in logs  # a job under way at the kill, run again

    for n in range(2):
        run_dir = root / str(n)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed", (summary, logs[-3000:])
        assert {"events.jsonl", "metrics.jsonl", "config.yaml", "summary.json"} <= {p.name for p in run_dir.iterdir()}
        # Every job ran (or ran again) on the models started again: the student's engine
        # on the surviving labelled node, the teacher's on the head.
        header = json.loads((run_dir / "events.jsonl").read_text().splitlines()[0])
        assert header["placement"]["engine teacher#0"]["node_id"] == cluster.node_with("teacher_node")
        # Only the dead engine was started again: the teacher's is the process it was.
        assert header["placement"]["engine teacher#0"]["pid"] == teacher_engine, "\n".join(
            line for line in logs.splitlines() if "[sweep]" in line or "died" in line
        )
        assert header["placement"]["engine student#0"]["node_id"] == survivor
        where = summary["placement"]
        assert where["engine student#0"]["node_id"] == survivor
        assert where["engine student#0"]["resources"]["student_node"] == 1  # what Ray gave it, recorded
        # Every agent is recorded (they are spawned SPREAD, which Ray treats as a
        # preference: on this cluster they have landed on one node as well as on several).
        agents = [label for label in where if not label.startswith("engine ")]
        assert len(agents) >= 3 and all(where[label].get("node_id") for label in agents)
        # Utilisation of each engine over the run, recorded and summarised.
        assert set(summary["engines"]) == {"teacher#0", "student#0"}
        assert all(0 < e["busy_fraction"] <= 1 and e["requests"] > 0 for e in summary["engines"].values())
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert {m["engine"] for m in metrics if m["name"] == "engine_busy_fraction"} == {"teacher#0", "student#0"}
    assert (root / "results.csv").is_file()


def _placed_header(root: Path) -> dict | None:
    """The header of the first job log that says where the engines run, if any yet."""
    for log in root.glob("*/events.jsonl"):
        with log.open() as lines:
            header = json.loads(lines.readline() or "{}")
        if header.get("placement"):
            return header
    return None
