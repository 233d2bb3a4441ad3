"""SuperCorrect (Yang et al. 2024): thought templates, correction traces, cross-model DPO."""

from classroom.environments.supercorrect.config import SuperCorrectConfig
from classroom.environments.supercorrect.loop import SuperCorrectLoop

__all__ = ["SuperCorrectConfig", "SuperCorrectLoop"]
