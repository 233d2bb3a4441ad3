"""A plug-in that does not import, is not the protocol or names no class: one line."""

from __future__ import annotations

import pytest

from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.environments.tom.policies import InterventionPolicy


def test_plugin_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"^config error: env.intervention._target_: cannot build 'nowhere.Nothing'"):
        instantiate_plugin("env.intervention", {"_target_": "nowhere.Nothing"}, InterventionPolicy)
    with pytest.raises(ConfigError, match="does not implement InterventionPolicy"):
        instantiate_plugin("env.intervention", {"_target_": "collections.OrderedDict"}, InterventionPolicy)
    with pytest.raises(ConfigError, match="_target_: missing"):
        instantiate_plugin("env.intervention", {"weight": 1}, InterventionPolicy)
