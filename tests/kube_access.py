"""The cluster a test's bot talks to: kubesim open to all (``open``), or enforcing the RBAC we
ship (``rbac``: ``deploy/k8s/rbac.yaml``), the bot authenticating as its service account, as it
does in its pod. The test itself drives the simulator through its in-process handle."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from kubesim import KubeSim, SimConfig, running
from kubesim.rbac import Rbac
from tests.paths import ROOT

SHIPPED_RBAC = ROOT / "deploy" / "k8s" / "rbac.yaml"
BOT_ACCOUNT = "islandbot/islandbot"  # the ServiceAccount of deploy/k8s/rbac.yaml
ACCESS = ("open", "rbac")


@contextlib.contextmanager
def cluster(
    config: SimConfig, kubeconfig: Path, *, access: str = "open", rbac: Path = SHIPPED_RBAC
) -> Iterator[KubeSim]:
    """A running simulator; ``kubeconfig`` (also ``sim.kubeconfig_path``) is the bot's."""
    if access == "open":
        with running(config, kubeconfig_path=kubeconfig) as sim:
            yield sim
        return
    if access != "rbac":
        raise ValueError(f"access is one of {ACCESS}, not {access!r}")
    bot_token = secrets.token_urlsafe(24)
    with running(
        config,
        kubeconfig_path=kubeconfig.with_name(kubeconfig.name + ".admin"),
        token=secrets.token_urlsafe(24),
        service_accounts={bot_token: BOT_ACCOUNT},
        rbac=Rbac.from_files([rbac]),
    ) as sim:
        sim.kubeconfig_path = sim.write_kubeconfig(kubeconfig, token=bot_token)
        yield sim
