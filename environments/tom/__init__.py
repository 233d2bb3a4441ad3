"""Theory-of-mind teaching (Saha, Hase, Bansal 2023): budgeted teacher interventions."""

from classroom.environments.tom.config import TomConfig
from classroom.environments.tom.loop import TomAgents, TomEpisode, TomLoop

__all__ = ["TomAgents", "TomConfig", "TomEpisode", "TomLoop"]
