"""DataEnvGym (Khan et al. 2024): a teacher makes training data for a student that trains."""

from classroom.environments.base import CHECKPOINT
from classroom.environments.dataenvgym.config import DataEnvConfig
from classroom.environments.dataenvgym.env import DataEnvGym
from classroom.environments.dataenvgym.loop import DataEnvAgents, DataEnvGymLoop

__all__ = ["CHECKPOINT", "DataEnvAgents", "DataEnvConfig", "DataEnvGym", "DataEnvGymLoop"]
