"""The check `make test` ends with: every ``_target_`` a shipped config names was built
by some test (tests/support/targets_built.py), and what feeds it (record_target)."""

from __future__ import annotations

from support.targets_built import main, shipped_targets, unbuilt

from classroom.agents.config_validation import TARGETS_LOG, instantiate_plugin
from classroom.environments.tom.policies import InterventionPolicy


def test_the_check_names_each_shipped_target_no_test_built(tmp_path, capsys):
    conf = tmp_path / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "task.yaml").write_text("_target_: pkg.load_task\nsplit: test\n")
    (conf / "env" / "loop.yaml").write_text("policy:\n  _target_: pkg.Policy\nlearners:\n  - {_target_: pkg.Learner, lr: 1}\n")
    assert shipped_targets(conf) == {"pkg.load_task": ["task.yaml"], "pkg.Policy": ["env/loop.yaml"], "pkg.Learner": ["env/loop.yaml"]}
    log = tmp_path / "built.txt"
    log.write_text("pkg.Policy\npkg.Other\npkg.Policy\n")
    assert unbuilt(log, conf) == {"pkg.load_task": ["task.yaml"], "pkg.Learner": ["env/loop.yaml"]}
    assert set(unbuilt(tmp_path / "absent.txt", conf)) == {"pkg.load_task", "pkg.Policy", "pkg.Learner"}


def test_the_shipped_configs_name_the_plugins_and_main_fails_on_an_empty_log(tmp_path, capsys):
    named = shipped_targets()
    assert "classroom.environments.tasks.reasoning_gym" in named and "classroom.agents.learners.LoRALearner" in named
    assert named["classroom.environments.tom.policies.Oracle"] == ["env/intervention/oracle.yaml"]
    empty = tmp_path / "built.txt"
    empty.write_text("")
    assert main([str(empty)]) == 1
    err = capsys.readouterr().err
    assert "never built by the suite: classroom.environments.tom.policies.Oracle (named by conf/env/intervention/oracle.yaml)" in err
    assert f"{len(named)} of the {len(named)} _target_s" in err
    empty.write_text("\n".join(named))
    assert main([str(empty)]) == 0


def test_a_plugin_built_from_its_config_is_noted_where_the_variable_says(tmp_path, monkeypatch):
    log = tmp_path / "built.txt"
    node = {"_target_": "classroom.environments.tom.policies.Oracle"}
    monkeypatch.delenv(TARGETS_LOG, raising=False)
    instantiate_plugin("env.intervention", node, InterventionPolicy)  # the variable unset: nothing written
    assert not log.exists()
    monkeypatch.setenv(TARGETS_LOG, str(log))
    instantiate_plugin("env.intervention", node, InterventionPolicy)
    instantiate_plugin("env.intervention", node, InterventionPolicy)
    assert log.read_text() == "classroom.environments.tom.policies.Oracle\n" * 2
