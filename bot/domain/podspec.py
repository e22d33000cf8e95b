"""Rendering an island Pod from the template, a branch profile and the island (pure).

Everything islandbot puts in the pod is set as data on a copy of the template dict, so no
user input (owner names, notes, overrides) can add or change fields beyond the one it is for.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.durations import parse_duration
from bot.domain.errors import BadOverride, Refusal
from bot.domain.naming import dns_label, pod_name
from bot.domain.pool import PoolSpec
from bot.domain.quantity import memory_bytes

Obj = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_ISLAND = "islandbot.io/island-id"
LABEL_BRANCH = "islandbot.io/branch"
LABEL_OWNER = "islandbot.io/owner"
ANNOTATION_OWNER_NAME = "islandbot.io/owner-name"
ANNOTATION_THREAD = "islandbot.io/chat-thread"
ANNOTATION_CLOCK = "islandbot.io/clock-offset-seconds"
ANNOTATION_CLAIMED_AT = "islandbot.io/claimed-at"  # a warm pool island handed over then
SELECTOR = f"{MANAGED_BY}=islandbot"
REGISTER_TOKEN_ENV = "ISLANDBOT_REGISTER_TOKEN"  # noqa: S105 - the variable's name, not a token

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class TemplateError(ValueError):
    """The template or a profile is not usable; the message names the field."""


@dataclass(frozen=True)
class Profile:
    """One branch: an overlay deep-merged over the template, and what users may override."""

    branch: str
    overlay: Mapping[str, Any]
    allowed_env: frozenset[str] = frozenset()
    memory_min: str | None = None
    memory_max: str | None = None
    pool: PoolSpec = field(default_factory=PoolSpec)  # its warm pool (size 0: none)

    @property
    def allowed_keys(self) -> list[str]:
        keys = [f"env.{name}" for name in sorted(self.allowed_env)]
        if self.memory_min is not None and self.memory_max is not None:
            keys.append("memory")
        return keys


@dataclass(frozen=True)
class IslandParams:
    """What the rendered pod says about one island."""

    island_id: int
    owner_id: str
    owner_name: str
    branch: str
    first_port: int
    initial_clock: str  # "YYYY-MM-DD HH:MM:SS", the island's clock when its server starts
    registration_url: str = ""
    registration_token: str = ""
    clock_offset_s: int = 0
    chat_channel: str | None = None
    chat_thread: str | None = None
    flag: str = "false"
    server_id_base: int = 1000  # server id = base + island id (island 269 -> 1269)
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    pod_name: str | None = None  # the island's recorded pod name (None: made from the above)


def deep_merge(base: Any, overlay: Any) -> Any:
    """Merge ``overlay`` into a copy of ``base``: dicts key by key; lists whose items are all
    dicts with a ``name`` merge item by item by name (new names are appended); anything else
    in the overlay replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if _named_list(base) and _named_list(overlay):
        merged_list = [copy.deepcopy(item) for item in base]
        index = {item["name"]: i for i, item in enumerate(merged_list)}
        for item in overlay:
            if item["name"] in index:
                merged_list[index[item["name"]]] = deep_merge(
                    merged_list[index[item["name"]]], item
                )
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(overlay)


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def server_container(pod: Obj) -> Obj:
    containers = pod.get("spec", {}).get("containers") or []
    if not containers or not isinstance(containers[0], dict):
        raise TemplateError("spec.containers: the template needs at least one container")
    return containers[0]


def port_names(template: Obj) -> list[str]:
    """The island's named ports, in block order; their count is the block size."""
    ports = server_container(template).get("ports") or []
    names = [p.get("name") if isinstance(p, dict) else None for p in ports]
    valid = [n for n in names if isinstance(n, str) and n]
    if not valid or len(valid) != len(names):
        raise TemplateError("spec.containers[0].ports: list the island's ports, each with a name")
    return valid


def parse_overrides(pairs: Sequence[str], profile: Profile) -> dict[str, str]:
    """``["env.LOG_LEVEL=debug", "memory=3Gi"]`` -> a dict, checked against the profile;
    ``BadOverride`` names the first problem."""
    allowed = profile.allowed_keys
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise BadOverride(Refusal.OVERRIDE_NOT_KEY_VALUE, pair=pair)
        if key not in allowed:
            raise BadOverride(
                Refusal.OVERRIDE_NOT_ALLOWED, key=key, branch=profile.branch, allowed=allowed
            )
        if len(value) > 500 or any(ord(ch) < 32 for ch in value):
            raise BadOverride(Refusal.OVERRIDE_BAD_VALUE, key=key)
        if key == "memory":
            try:
                wanted = memory_bytes(value)
            except ValueError:
                raise BadOverride(Refusal.OVERRIDE_NOT_MEMORY, value=value) from None
            low, high = memory_bytes(str(profile.memory_min)), memory_bytes(str(profile.memory_max))
            if not low <= wanted <= high:
                raise BadOverride(
                    Refusal.OVERRIDE_MEMORY_RANGE,
                    value=value,
                    low=str(profile.memory_min),
                    high=str(profile.memory_max),
                )
        result[key] = value
    return result


def _set_env(container: Obj, name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for item in env:
        if item.get("name") == name:
            item.clear()
            item.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def _env_var(port_name: str) -> str:
    return "PORT_" + re.sub(r"[^A-Za-z0-9]+", "_", port_name).strip("_").upper()


def label_value(owner_id: str) -> str:
    """An owner id as the pod's owner label (ids that are not valid label values are made so)."""
    if _LABEL_VALUE.match(owner_id) and len(owner_id) <= 63:
        return owner_id
    return dns_label(owner_id)


def render_pod(
    template: Obj, profile: Profile, island: IslandParams, overrides: Mapping[str, str]
) -> Obj:
    """The pod for ``island``: template, then profile, then the island's own values."""
    pod: Obj = deep_merge(template, dict(profile.overlay))
    meta = pod.setdefault("metadata", {})
    meta["name"] = island.pod_name or pod_name(
        owner_name=island.owner_name, branch=island.branch, island_id=island.island_id
    )
    owner_label = label_value(island.owner_id)
    meta["labels"] = {
        **(meta.get("labels") or {}),
        **island.extra_labels,
        MANAGED_BY: "islandbot",
        LABEL_ISLAND: str(island.island_id),
        LABEL_BRANCH: dns_label(island.branch),
        LABEL_OWNER: owner_label,
    }
    annotations = {
        ANNOTATION_OWNER_NAME: island.owner_name,
        ANNOTATION_CLOCK: str(island.clock_offset_s),
    }
    if island.chat_channel and island.chat_thread:
        annotations[ANNOTATION_THREAD] = f"{island.chat_channel}/{island.chat_thread}"
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}

    server = server_container(pod)
    names = port_names(pod)
    server["ports"] = [
        {**port, "containerPort": island.first_port + i, "hostPort": island.first_port + i}
        for i, port in enumerate(server["ports"])
    ]
    server_id = island.server_id_base + island.island_id
    server["command"] = [
        *server.get("command", []),
        str(island.island_id),
        island.flag,
        str(server_id),
        island.initial_clock,
    ]
    values = {
        "ISLAND_ID": str(island.island_id),
        "SERVER_ID": str(server_id),
        "ISLAND_BRANCH": island.branch,
        "ISLAND_OWNER": island.owner_id,
        "ISLAND_INITIAL_CLOCK": island.initial_clock,
        "ISLANDBOT_REGISTER_URL": island.registration_url,
        REGISTER_TOKEN_ENV: island.registration_token,
        "username": island.owner_name,  # the original seed.sh reads these two
        "curlServer": island.registration_url,
        **{_env_var(n): str(island.first_port + i) for i, n in enumerate(names)},
    }
    for name, value in values.items():
        _set_env(server, name, value)
    for key, value in overrides.items():
        if key.startswith("env."):
            _set_env(server, key[4:], value)
        elif key == "memory":
            resources = server.setdefault("resources", {})
            limits = resources.setdefault("limits", {})
            requests = resources.setdefault("requests", {})
            limits["memory"] = value
            if memory_bytes(str(requests.get("memory", value))) > memory_bytes(value):
                requests["memory"] = value
    return pod


def allowed_profile(branch: str, data: Any) -> Profile:
    """Build a profile from the parsed YAML of ``branches/<branch>.yaml``."""
    if not isinstance(data, dict) or set(data) - {"pod", "overrides", "pool"}:
        raise TemplateError(
            "top-level keys must be 'pod' (the overlay), 'overrides' and 'pool' (the warm pool)"
        )
    overlay = data.get("pod") or {}
    if not isinstance(overlay, dict):
        raise TemplateError("pod: must be a mapping (a partial Pod)")
    allowed = data.get("overrides") or {}
    if not isinstance(allowed, dict) or set(allowed) - {"env", "memory"}:
        raise TemplateError(
            "overrides: only 'env' (a list of names) and 'memory' ({min, max}) are supported"
        )
    env = allowed.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) and _ENV_NAME.match(e) for e in env):
        raise TemplateError("overrides.env: must be a list of environment variable names")
    memory = allowed.get("memory")
    low = high = None
    if memory is not None:
        if not isinstance(memory, dict) or set(memory) != {"min", "max"}:
            raise TemplateError("overrides.memory: must be {min: QUANTITY, max: QUANTITY}")
        low, high = str(memory["min"]), str(memory["max"])
        try:
            if memory_bytes(low) > memory_bytes(high):
                raise TemplateError("overrides.memory: min is above max")
        except ValueError as exc:
            raise TemplateError(f"overrides.memory: {exc}") from exc
    return Profile(branch, overlay, frozenset(env), low, high, _pool(data.get("pool")))


def _pool(data: Any) -> PoolSpec:
    """``pool: {size: N, max_age: 24h}``: the branch's warm pool (absent: none)."""
    if data is None:
        return PoolSpec()
    if not isinstance(data, dict) or not set(data) <= {"size", "max_age"}:
        raise TemplateError("pool: must be {size: N, max_age: DURATION} (max_age optional)")
    size = data.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int):
        raise TemplateError("pool.size: must be a whole number")
    try:
        max_age = parse_duration(str(data["max_age"])) if "max_age" in data else None
        return PoolSpec(size) if max_age is None else PoolSpec(size, max_age)
    except ValueError as exc:
        raise TemplateError(f"pool: {exc}") from exc
