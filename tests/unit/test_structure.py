"""The structure the code promises: imports one way, loops as plug-ins, configs that
compose and validate, YAML that sets only what differs from the models' defaults."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAYERS = {"serving": 0, "agents": 1, "environments": 2, "launch": 3}
CONF = REPO / "conf"


def classroom_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `classroom.*` import in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("classroom.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("classroom."):
            found.append((node.lineno, node.module))
    return found


def test_imports_point_one_way():
    """serving <- agents <- environments <- launch: nothing imports a folder above its own."""
    wrong = []
    for folder, level in LAYERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            for line, module in classroom_imports(path):
                target = module.split(".")[1]
                if target in LAYERS and LAYERS[target] > level:
                    wrong.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not wrong, "imports that go back up:\n" + "\n".join(wrong)


def test_the_import_walk_sees_a_wrong_import(tmp_path):
    """The walk above finds lazy imports too (so the test can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from classroom.launch.plan import prepare\n")
    assert classroom_imports(bad) == [(2, "classroom.launch.plan")]


def test_launch_names_no_loop_and_nothing_probes_with_hasattr():
    from classroom.environments.base import LOOPS

    names = re.compile(r"\b(" + "|".join(map(re.escape, LOOPS)) + r")\b")
    for path in sorted((REPO / "launch").rglob("*.py")):
        hits = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1) if names.search(line)]
        assert not hits, hits
    for folder in ("launch", "environments", "agents"):
        for path in sorted((REPO / folder).rglob("*.py")):
            assert "hasattr(" not in path.read_text(), f"{path.relative_to(REPO)} probes with hasattr"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose(overrides: list[str]) -> dict:
    from classroom.launch.compose import compose_one

    composed = compose_one(overrides)
    return {**composed.config, "_sweep_params": composed.sweep_params}


def every_config() -> list[list[str]]:
    """One override list per option of every group, and per value a sweep grid names."""
    # DataEnvGym's skill tree needs a task with sub-skills (its experiments pick one).
    cases = [[f"env={o}", *(["task=arithmetic_skills"] if o.startswith("dataenvgym") else [])] for o in options("env")]
    cases += [[f"env={o}", f"env/policy={p}", "task=arithmetic_skills"] for o in ("dataenvgym",) for p in options("env/policy")]
    cases += [["env=dataenvgym", f"env/engine={e}", "task=arithmetic_skills"] for e in options("env/engine")]
    cases += [[f"env/intervention={o}"] for o in options("env/intervention")]
    cases += [[f"experiment={o}"] for o in options("experiment")]
    cases += [[f"{group}={o}"] for group in ("task", "model", "teacher", "student", "cluster") for o in options(group)]
    for sweep in options("sweep"):
        # Every value of each swept key, the other keys at their first value (a job's config).
        grid = {key: str(values).split(",") for key, values in compose([f"sweep={sweep}"])["_sweep_params"].items()}
        first = {key: values[0] for key, values in grid.items()}
        for key, values in grid.items():
            if key == "seed":  # a number the config passes on: its first and last value stand for the rest
                values = sorted({values[0], values[-1]}, key=values.index)
            cases += [[f"sweep={sweep}", *(f"{k}={value if k == key else v}" for k, v in first.items())] for value in values]
    return cases


@pytest.mark.parametrize("overrides", every_config(), ids=lambda o: " ".join(o))
def test_every_config_composes_and_validates(overrides, data_dir, monkeypatch):
    """Each option composes, and `prepare` validates every section against its model,
    builds the task and the plug-ins: a YAML that drifts from its model fails here."""
    from classroom.launch import plan as run_plan

    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")  # model=openai needs its key set (never sent here)
    cfg = compose(overrides)
    cfg.pop("_sweep_params")
    if cfg["task"]["_target_"].endswith(".huggingface"):
        run_plan.task_loader(cfg["task"])  # the hub is not reachable here: its keys checked, not loaded
        cfg["task"] = {"_target_": "classroom.environments.tasks.reasoning_gym"}
    plan = run_plan.prepare(cfg)
    assert plan.loop.name == cfg["env"]["loop"].split(":")[-1]


def leaves(value, prefix=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, (*prefix, key))
    else:
        yield prefix, value


def section_defaults() -> dict[str, dict]:
    """conf file -> the defaults its section's model gives (from the schema store)."""
    from classroom.agents.settings import StudentSettings, TeacherSettings
    from classroom.environments.dataenvgym import DataEnvConfig
    from classroom.environments.tom import TomConfig
    from classroom.launch.config_store import defaults_of
    from classroom.launch.settings import ClusterSettings
    from classroom.serving.engine_config import VLLMEngineConfig

    engine = defaults_of(VLLMEngineConfig)
    files = {"env/tom.yaml": defaults_of(TomConfig), "teacher/default.yaml": defaults_of(TeacherSettings)}
    files |= {f"env/{p.name}": defaults_of(DataEnvConfig) for p in (CONF / "env").glob("dataenvgym*.yaml")}
    files |= {f"student/{p.name}": defaults_of(StudentSettings) for p in (CONF / "student").glob("*.yaml")}
    files |= {f"cluster/{p.name}": defaults_of(ClusterSettings) for p in (CONF / "cluster").glob("*.yaml")}
    for path in (CONF / "model").glob("*.yaml"):
        models = (yaml.safe_load(path.read_text()) or {}).get("models", {})
        files[f"model/{path.name}"] = {"models": {name: {"engine": engine, "replicas": 1} for name in models}}
    return files


MISSING = object()


def lookup(tree: dict, path: tuple) -> object:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return MISSING
        tree = tree[key]
    return tree


def written_values(name: str) -> dict:
    return {k: v for k, v in (yaml.safe_load((CONF / name).read_text()) or {}).items() if k != "defaults"}


def parent_file(name: str) -> str | None:
    """The file of the same group a config extends (`defaults: [vllm_gpu, _self_]`)."""
    entries = (yaml.safe_load((CONF / name).read_text()) or {}).get("defaults", [])
    siblings = [e for e in entries if isinstance(e, str) and "/" not in e and e != "_self_"]
    return f"{name.rsplit('/', 1)[0]}/{siblings[0]}.yaml" if siblings else None


def test_yaml_sets_only_what_differs_from_the_models():
    """A value is written only where it changes what the config would hold without it:
    the model's default, or, in a config that extends another, the value it inherits."""
    same = []
    for name, defaults in section_defaults().items():
        parent = parent_file(name)
        inherited = written_values(parent) if parent else {}
        for path, value in leaves(written_values(name)):
            before = lookup(inherited, path)
            if before is MISSING and lookup(defaults, path) == value:
                same.append(f"{name}: {'.'.join(map(str, path))} = {value!r} is the model's default")
            elif before == value:
                same.append(f"{name}: {'.'.join(map(str, path))} = {value!r} is what {parent} sets")
    assert not same, "\n".join(same)


def test_the_default_check_sees_a_default_written_again(tmp_path):
    """The check above can fail: a value equal to the model's default is found."""
    assert lookup({"sampling": {"max_tokens": 160}}, ("sampling", "max_tokens")) == 160
    assert lookup({"sampling": {}}, ("sampling", "max_tokens")) is MISSING


# What a CPU needs changed in an engine of model=vllm_gpu for model=cpu_pair.
CPU_ENGINE_KEYS = {"model", "device", "dtype", "tensor_parallel_size", "enforce_eager", "kv_cache_gib", "num_cpus"}


def test_cpu_pair_is_vllm_gpu_with_only_what_a_cpu_needs_changed():
    """model=cpu_pair stands in for model=vllm_gpu in the tests: the same models, roles,
    replicas and engine settings, other models on the CPU, and nothing else changed."""
    gpu, cpu = compose(["model=vllm_gpu"])["model"], compose(["model=cpu_pair"])["model"]
    assert cpu["roles"] == gpu["roles"] and cpu["models"].keys() == gpu["models"].keys()
    for name, spec in gpu["models"].items():
        stand_in = cpu["models"][name]
        assert {k: v for k, v in stand_in.items() if k != "engine"} == {k: v for k, v in spec.items() if k != "engine"}
        changed = {key for key, value in spec["engine"].items() if stand_in["engine"][key] != value}
        assert changed <= CPU_ENGINE_KEYS, f"{name}: {sorted(changed - CPU_ENGINE_KEYS)} differ from vllm_gpu"
        assert stand_in["engine"]["device"] == "cpu" and stand_in["engine"]["tensor_parallel_size"] == 1
    # Two models, as on GPUs: the teacher's and the students' are not the same.
    assert cpu["models"]["teacher"]["engine"]["model"] != cpu["models"]["student"]["engine"]["model"]


def test_the_toy_loop_is_written_against_at_most_three_classroom_modules():
    """docs/extending.md's whole loop imports what it needs from classroom.environments.api
    (issue #27: at most 3 classroom modules), and each name it imports is there."""
    import importlib

    text = (REPO / "docs" / "extending.md").read_text()
    section = text[text.index("## Add a teaching loop") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    imported: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("classroom"):
            imported.setdefault(node.module, []).extend(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            assert not [a.name for a in node.names if a.name.startswith("classroom")], "import classroom.X: name what it takes"
    assert 1 <= len(imported) <= 3, sorted(imported)
    for module, names in imported.items():
        missing = [name for name in names if not hasattr(importlib.import_module(module), name)]
        assert not missing, f"{module} has no {missing}"


def test_composing_a_config_imports_only_the_loop_it_selects():
    """A loop's schema is stored when a config first asks for it: composing an LbT config
    imports no other loop (a fresh interpreter, so nothing was imported before)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from classroom.launch.compose import compose_one\n"
        "compose_one(['env=lbt_m1'])\n"
        "print(sorted({m.split('.')[2] for m in sys.modules if m.startswith('classroom.environments.') and m.count('.') > 2}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['lbt']"


def test_every_code_package_is_installed():
    """pyproject lists its packages by name: a folder of code left out of the list is
    missing from a wheel (a non-editable install lacked `classroom bench` this way)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {f"classroom.{name}" for name in ("agents", "environments", "serving", "launch", "conf")}
    assert set(project["package-dir"]) == folders
    found = set()
    for root in folders:
        top = REPO / root.split(".")[1]
        found |= {".".join([root, *init.parent.relative_to(top).parts]) for init in top.rglob("__init__.py")}
    assert found == set(project["packages"])
