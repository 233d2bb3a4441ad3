"""A policy class from a module outside the repo, named by _target_, runs in an actor."""

from __future__ import annotations

import textwrap

import pytest

from classroom.agents.plugins import ConfigError, instantiate_plugin
from classroom.environments.tom.policies import InterventionPolicy

PLUGIN = textwrap.dedent(
    '''
    class LongestQuestionFirst:
        """Intervene where the question is longest (a user's own policy)."""

        name = "longest_first"

        def __init__(self, weight: float = 1.0):
            self.weight = weight

        async def utilities(self, problems, attempts, context=None):
            return [self.weight * len(p.question) for p in problems]
    '''
)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_policies.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    return "my_policies.LongestQuestionFirst"


def test_plugin_errors_are_one_line(plugin_module):
    with pytest.raises(ConfigError, match=r"^config error: env.intervention._target_: cannot build 'nowhere.Nothing'"):
        instantiate_plugin("env.intervention", {"_target_": "nowhere.Nothing"}, InterventionPolicy)
    with pytest.raises(ConfigError, match="does not implement InterventionPolicy"):
        instantiate_plugin("env.intervention", {"_target_": "collections.OrderedDict"}, InterventionPolicy)
    with pytest.raises(ConfigError, match="_target_: missing"):
        instantiate_plugin("env.intervention", {"weight": 1}, InterventionPolicy)
