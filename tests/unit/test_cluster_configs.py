"""The cluster recipes as shipped: `ray up`'s config against Ray's own schema, the
RayJob's entrypoint composes (the cluster tier runs them: tests/cluster)."""

from __future__ import annotations

from pathlib import Path


def test_the_cluster_configs_are_what_ray_and_classroom_accept():
    # `ray up`'s config against Ray's own schema; the RayJob's entrypoint composes.

    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    from classroom.launch.compose import check_overrides

    folder = Path(__file__).parents[2] / "launch" / "cluster"
    validate_config(prepare_config(yaml.safe_load((folder / "ray-up.yaml").read_text())))
    job = yaml.safe_load((folder / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["rayClusterSpec"]["rayVersion"] == "2.60.0"
    words = job["spec"]["entrypoint"].split()
    assert words[:4] == ["python", "-m", "classroom.launch.cli", "run"]
    assert check_overrides(words[4:]) is None
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["py_modules"]
