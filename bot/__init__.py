"""islandbot: game-server islands on Kubernetes, on demand, from chat."""

__version__ = "0.1.0"
