"""Learning by teaching (Ning et al. 2024): M1, M2 and M3 over a class of students."""

from classroom.environments.lbt.config import LbtConfig
from classroom.environments.lbt.loop import LbtLoop

__all__ = ["LbtConfig", "LbtLoop"]
