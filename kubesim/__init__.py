"""kubesim: a Kubernetes API simulator that speaks the real REST API over real HTTP.

It stores objects like an API server (resourceVersions, watches, selectors, Status errors) and
simulates the scheduler and the kubelet, including island game servers that open real TCP
listeners. See ``kubesim/README.md``.
"""

from kubesim.auth import ServerTLS
from kubesim.config import NodeSpec, SimConfig, parse_nodes
from kubesim.runner import KubeSim, running

__all__ = ["KubeSim", "NodeSpec", "ServerTLS", "SimConfig", "parse_nodes", "running"]
