"""Loading the island templates from ``k8s_templates/`` and validating what they render.

A broken template stops the bot at start-up with the file and the field in the message; every
rendered pod is validated again (strict ``kubernetes-validate``, pinned to the Kubernetes minor
version in the settings) before it is sent to the cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from bot.domain.errors import Refusal, UnknownBranch
from bot.domain.podspec import (
    IslandParams,
    Obj,
    Profile,
    TemplateError,
    allowed_profile,
    parse_overrides,
    port_names,
    render_pod,
    server_container,
)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "k8s_templates"  # the shipped ones
BASE_FILE = "island-pod.yaml"
BRANCH_DIR = "branches"

# A made-up island used to validate every profile at start-up.
SAMPLE = IslandParams(
    island_id=269,
    owner_id="U0SAMPLE",
    owner_name="sample user",
    branch="sample",
    first_port=30807,
    initial_clock="2021-09-18 23:30:07",
    registration_url="http://islandbot.example/api/v1/islands/269/register",
    registration_token="sample-token",  # noqa: S106 - a sample, not a secret
)


def _field(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@functools.lru_cache(maxsize=1)
def supported_versions() -> list[str]:
    """The Kubernetes minor versions the installed kubernetes-validate has schemas for."""
    utils = kubernetes_validate.utils
    found = {utils.major_minor(v) for v in utils.all_versions()}
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def check_version(kubernetes_version: str) -> None:
    known = supported_versions()
    if kubernetes_version not in known:
        raise TemplateError(
            f"kubernetes-validate has no schema for Kubernetes {kubernetes_version}; "
            f"it knows {known[0]} to {known[-1]}"
        )


@functools.lru_cache(maxsize=8)
def _pod_validator(kubernetes_version: str) -> Any:
    """A compiled strict Pod schema, as ``kubernetes_validate.validate`` builds it on every
    call (14 ms a pod); built once here, validating a pod takes about a millisecond."""
    utils = kubernetes_validate.utils
    version = [
        v
        for v in utils.all_versions()
        if utils.major_minor(v) <= utils.major_minor(kubernetes_version)
    ][-1]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = utils.schema_contents(f"{folder}/pod-v1.json", kubernetes_version)
    definitions = utils.schema_contents(f"{folder}/_definitions.json", kubernetes_version)
    registry = utils.Registry()
    registry = utils.Resource.from_contents(schema) @ registry
    registry = utils.Resource.from_contents(definitions) @ registry
    return utils.jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_pod(pod: Obj, kubernetes_version: str) -> None:
    """Raise ``TemplateError`` naming the first field the Kubernetes schema rejects."""
    check_version(kubernetes_version)
    if pod.get("kind") != "Pod" or pod.get("apiVersion") != "v1":
        raise TemplateError("kind/apiVersion: must be Pod, v1")
    error = next(iter(_pod_validator(kubernetes_version).iter_errors(pod)), None)
    if error is not None:
        raise TemplateError(f"{_field(list(error.path))}: {error.message}")


@dataclass(frozen=True)
class TemplateSet:
    base: Obj
    profiles: Mapping[str, Profile]
    ports: tuple[str, ...]
    kubernetes_version: str
    directory: Path

    @property
    def block_size(self) -> int:
        """How many consecutive host ports one island takes."""
        return len(self.ports)

    @property
    def server_container(self) -> str:
        """The name of the island's server container (the template's first)."""
        return str(server_container(self.base)["name"])

    @property
    def branches(self) -> list[str]:
        return sorted(self.profiles)

    def profile(self, branch: str) -> Profile:
        try:
            return self.profiles[branch]
        except KeyError:
            raise UnknownBranch(
                Refusal.UNKNOWN_BRANCH, branch=branch, known=self.branches
            ) from None

    def node_selector(self, branch: str) -> dict[str, str]:
        """The labels a node needs to take the branch's islands."""
        base = self.base.get("spec", {}).get("nodeSelector") or {}
        overlay = self.profile(branch).overlay.get("spec", {}).get("nodeSelector") or {}
        return {str(k): str(v) for k, v in {**base, **overlay}.items()}

    def overrides(self, branch: str, pairs: Sequence[str]) -> dict[str, str]:
        """The overrides the branch allows, checked (``BadOverride``, ``UnknownBranch``)."""
        return parse_overrides(pairs, self.profile(branch))

    def render(self, island: IslandParams, overrides: Mapping[str, str]) -> Obj:
        """The validated pod for ``island``."""
        pod = render_pod(self.base, self.profile(island.branch), island, overrides)
        validate_pod(pod, self.kubernetes_version)
        return pod


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc


def _check_profile(
    base: Obj,
    profile: Profile,
    sample: IslandParams,
    ports: tuple[str, ...],
    kubernetes_version: str,
) -> None:
    rendered = render_pod(base, profile, sample, {})
    if tuple(port_names(rendered)) != ports:
        raise TemplateError("spec.containers[0].ports: a profile may not change the island's ports")
    validate_pod(rendered, kubernetes_version)


def load_templates(
    directory: Path | None = None, *, kubernetes_version: str = "1.37"
) -> TemplateSet:
    """Read and check the base template and every branch profile; render each profile once
    with a sample island and validate the result."""
    root = directory or DEFAULT_TEMPLATES_DIR
    check_version(kubernetes_version)
    base_path = root / BASE_FILE
    base = _load_yaml(base_path)
    if not isinstance(base, dict) or base.get("kind") != "Pod":
        raise TemplateError(f"{base_path}: must be a single Pod manifest")
    try:
        ports = tuple(port_names(base))
    except TemplateError as exc:
        raise TemplateError(f"{base_path}: {exc}") from exc
    profiles: dict[str, Profile] = {}
    for path in sorted((root / BRANCH_DIR).glob("*.yaml")):
        branch = path.stem
        try:
            profiles[branch] = allowed_profile(branch, _load_yaml(path))
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc}") from exc
    if not profiles:
        raise TemplateError(f"{root / BRANCH_DIR}: no branch profiles (*.yaml) found")
    templates = TemplateSet(base, profiles, ports, kubernetes_version, root)
    for branch, profile in profiles.items():
        sample = IslandParams(**{**SAMPLE.__dict__, "branch": branch})
        try:
            _check_profile(base, profile, sample, ports, kubernetes_version)
        except TemplateError as exc:
            raise TemplateError(
                f"{root / BRANCH_DIR / (branch + '.yaml')} (rendered over {BASE_FILE}): {exc}"
            ) from exc
    return templates
