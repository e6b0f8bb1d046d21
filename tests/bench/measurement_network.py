"""Moved to services/bench (``winwin bench reads`` runs it): the network and its oracle."""

from services.bench.network import Network, build_network
from services.bench.oracle import Oracle, oracle

__all__ = ["Network", "Oracle", "build_network", "oracle"]
