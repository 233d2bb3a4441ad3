"""A real multi-node Ray cluster on this machine: a head and worker nodes, each its own
raylet (`ray start --block` processes), with the job server on 127.0.0.1.

Its own temp folder keeps it apart from the tests' local Ray (a `ray start` in the
default one would make a later `ray.init()` join it). Stopping kills only its own
processes, never `ray stop` (which would end every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """Head + workers started with ``ray start``; ``nodes`` are (name, resources).

    Each node's processes write the adapters their engines are sent into a folder of
    that node's own (:meth:`adapters_dir`), as on machines that share no disk.
    """

    def __init__(self, nodes: list[tuple[str, dict[str, float]]], *, cpus_per_node: int = 1):
        # Short: Ray's socket paths live under it (AF_UNIX allows ~107 characters).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.port = free_port()
        self.dashboard_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            # A killed node is known dead in ~3 s rather than ~15-30 s (Ray's defaults).
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
        }
        self.env.pop("RAY_ADDRESS", None)
        self.cpus_per_node = cpus_per_node
        for name, resources in nodes:
            self.add_node(name, resources)

    def add_node(self, name: str, resources: dict[str, float]) -> None:
        """Start node ``name`` (the head if it is the first) and wait until it joined."""
        common = [
            "--block",
            f"--num-cpus={self.cpus_per_node}",
            f"--resources={json.dumps(resources)}",
            # Small: three nodes' stores share this machine's /dev/shm.
            f"--object-store-memory={300 * 2**20}",
            "--disable-usage-stats",
            # Each node's agents on ports of their own: on one machine the defaults collide.
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        if not self.processes:  # the first node is the head
            args = [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp_dir}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
            ]
        else:
            args = [f"--address={self.address}"]
        # A raylet's workers inherit its environment.
        env = {**self.env, "CLASSROOM_ADAPTERS_DIR": str(self.adapters_dir(name))}
        with open(self.temp_dir / f"{name}.log", "wb") as log:  # why a node did not start
            self.processes[name] = subprocess.Popen(
                [RAY, "start", *args, *common], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        # One at a time: two nodes joining at once on one machine lose one of them.
        self.wait_for_nodes(len(self.processes))

    def adapters_dir(self, name: str) -> Path:
        """Node ``name``'s own folder for the adapters its engines are sent."""
        return self.temp_dir / f"adapters-{name}"

    def nodes(self) -> list[dict]:
        """The cluster's alive nodes (node_id, resources_total), from the dashboard."""
        from ray.util.state import list_nodes

        return [n.__dict__ if hasattr(n, "__dict__") else dict(n) for n in list_nodes(address=self.dashboard) if n.state == "ALIVE"]

    def wait_for_nodes(self, count: int, timeout_s: float = 120.0) -> None:
        deadline = time.time() + timeout_s
        while True:
            try:
                if len(self.nodes()) >= count:
                    return
            except Exception:  # the dashboard is not up yet
                pass
            exited = [name for name, process in self.processes.items() if process.poll() is not None]
            if exited or time.time() > deadline:
                logs = {name: (self.temp_dir / f"{name}.log").read_text(errors="replace")[-600:] for name in exited}
                raise TimeoutError(f"the test cluster has not {count} nodes after {timeout_s:g} s (exited: {logs})")
            time.sleep(0.5)

    def node_with(self, resource: str) -> str:
        """The id of the node that has ``resource``."""
        [node] = [n for n in self.nodes() if resource in (n.get("resources_total") or {})]
        return node["node_id"]

    def kill_node(self, name: str) -> None:
        """SIGKILL a node's raylet and its workers: the node dies, as a machine would."""
        process = self.processes.pop(name)
        import psutil

        with contextlib.suppress(psutil.Error):  # gone already, or a child just exited
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        # Killed as a machine would be, workers first, the head last: a SIGTERM'd raylet
        # takes up to 10 s each to wind down, which a test cluster need not wait for.
        for name in reversed(list(self.processes)):
            self.kill_node(name)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def submit(self, shipped: Path, *entrypoint: str, wait: bool = True) -> subprocess.CompletedProcess:
        """`ray job submit` of ``entrypoint``, with ``shipped`` (classroom's code, from
        `classroom package`) carried by the job's ``runtime_env.py_modules``; with
        ``wait=False`` it returns once the job is submitted."""
        runtime_env = json.dumps({"py_modules": [str(shipped)]})
        no_wait = [] if wait else ["--no-wait"]
        return self.ray("job", "submit", *no_wait, f"--address={self.dashboard}", f"--runtime-env-json={runtime_env}", "--", *entrypoint)

    def ray(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
        """A `ray` CLI command against this cluster's job server."""
        return subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout_s)
