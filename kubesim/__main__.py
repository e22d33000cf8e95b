"""``python -m kubesim serve [--host H] [--port P] [--kubeconfig PATH] [--nodes SPEC] ...``."""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from dataclasses import replace
from pathlib import Path

import yaml

from kubesim.auth import ServerTLS
from kubesim.config import SimConfig, parse_nodes
from kubesim.rbac import Rbac
from kubesim.runner import KubeSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Kubernetes API in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--kubeconfig", type=Path, default=Path("kubesim.kubeconfig"))
    serve.add_argument(
        "--nodes", help="NAME[:k=v,...][;NAME...] (keys cpu, memory, pods, ip; others are labels)"
    )
    serve.add_argument(
        "--boot-delay",
        type=float,
        default=None,
        help="seconds from container start to the server's ports opening",
    )
    serve.add_argument(
        "--create-delay",
        type=float,
        default=None,
        help="seconds a bound pod stays ContainerCreating",
    )
    serve.add_argument(
        "--probe-period", type=float, default=None, help="seconds between readiness probes"
    )
    serve.add_argument(
        "--failing-image",
        action="append",
        default=[],
        help="an image that fails to pull (repeatable)",
    )
    serve.add_argument(
        "--no-metrics",
        action="store_true",
        help="no resource metrics API (metrics.k8s.io): a cluster without metrics-server",
    )
    serve.add_argument(
        "--metrics-delay",
        type=float,
        default=None,
        help="seconds from a container's start to its metrics appearing",
    )
    serve.add_argument("--tls-cert", type=Path, help="serve HTTPS: certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    serve.add_argument("--tls-ca", type=Path, help="the CA that signed it, for the kubeconfig")
    serve.add_argument(
        "--token-file", type=Path, help="require this bearer token (file holding it)"
    )
    serve.add_argument(
        "--service-account",
        action="append",
        default=[],
        metavar="NAMESPACE/NAME=TOKEN_FILE",
        help="a service account's token (repeatable); it may do what --rbac grants it",
    )
    serve.add_argument(
        "--rbac",
        action="append",
        default=[],
        type=Path,
        help="YAML with Roles, ClusterRoles and bindings to enforce (repeatable)",
    )
    args = parser.parse_args(argv)
    tls_files = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls_files) and not all(tls_files):
        parser.error("--tls-cert, --tls-key and --tls-ca go together")
    tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_ca) if all(tls_files) else None
    if tls is not None:
        try:  # unreadable or mismatched files: say so here, not as a traceback from the server
            tls.context()
            tls.ca.read_bytes()
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"--tls-cert/--tls-key/--tls-ca: {exc}")
    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
        if not token:
            parser.error(f"--token-file: {args.token_file} is empty")

    accounts: dict[str, str] = {}
    for spec in args.service_account:
        account, sep, file = spec.partition("=")
        if not sep or "/" not in account:
            parser.error(f"--service-account: expected NAMESPACE/NAME=TOKEN_FILE, got {spec!r}")
        try:
            sa_token = Path(file).read_text().strip()
        except OSError as exc:
            parser.error(f"--service-account: {exc}")
        accounts[sa_token] = account
    if accounts and token is None:
        parser.error("--service-account needs --token-file (the admin's token) too")
    try:
        rbac = Rbac.from_files(args.rbac)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        parser.error(f"--rbac: {exc}")

    config = SimConfig()
    try:
        if args.nodes:
            config = replace(config, nodes=parse_nodes(args.nodes))
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("boot_delay", "create_delay", "probe_period", "metrics_delay"):
        value = getattr(args, name)
        if value is None:
            continue
        least = 0.01 if name == "probe_period" else 0.0
        if value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}: {value}")
        config = replace(config, **{name: value})
    if args.no_metrics:
        config = replace(config, metrics=False)
    if args.failing_image:
        config = replace(config, failing_images=frozenset(args.failing_image))
    sim = KubeSim(
        config,
        host=args.host,
        port=args.port,
        kubeconfig_path=args.kubeconfig,
        tls=tls,
        token=token,
        service_accounts=accounts,
        rbac=rbac,
    )
    sim.start()
    print(f"kubesim serving {sim.url} (kubeconfig: {args.kubeconfig})", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
