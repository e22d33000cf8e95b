"""Every refusal has its words, and a refusal raised anywhere (storage, the cluster adapter, the
domain) reads the same once worded where the person is answered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.domain.errors import NotFound, QuotaExceeded, Refusal, UserError
from bot.words import refusals

DAY = 86400

# one example of each refusal's details, and a part of the sentence that must show them
SAMPLES: dict[Refusal, tuple[dict[str, Any], str]] = {
    Refusal.ISLAND_NOT_FOUND: ({"island_id": 7}, "There is no island #7."),
    Refusal.IN_POOL: ({"island_id": 7, "branch": "dev"}, "#7 is a warm dev island in its pool"),
    Refusal.NO_POOL_ADMIN: ({"who": ["U1"]}, "Only admins steer the warm pools: <@U1>."),
    Refusal.POOL_SIZE: ({"size": 101, "limit": 100}, "0 to 100 islands, not 101"),
    Refusal.QUOTA_EXCEEDED: ({"limit": 2, "island_ids": [3, 5]}, "(#3, #5); the limit is 2"),
    Refusal.PORTS_EXHAUSTED: (
        {"port_range": "30000-30008", "live_islands": 3},
        "no free port block in 30000-30008: 3 islands live.",
    ),
    Refusal.REQUEST_KEY_TAKEN: ({"request_key": "T1"}, "'T1' was already used"),
    Refusal.PORTS_STILL_NEEDED: ({"island_id": 4, "state": "ready"}, "#4 is ready"),
    Refusal.CHANNEL_NOT_ALLOWED: ({"allowed": ["C1", "C2"]}, "<#C1>, <#C2> only"),
    Refusal.NOT_ALLOWED: (
        {"action": "stop", "island_id": 9, "who": ["U1", "U2"]},
        "may stop island #9: <@U1>, <@U2>.",
    ),
    Refusal.ALREADY_STOPPED: ({"island_id": 2}, "#2 is already stopped"),
    Refusal.CANNOT_RESTART: ({"island_id": 2, "state": "stopping"}, "#2 is stopping; start"),
    Refusal.CANNOT_EXTEND: ({"island_id": 2, "state": "stopped"}, "nothing left to extend"),
    Refusal.EXTEND_TOO_FAR: (
        {"island_id": 2, "max_ttl_s": 2 * DAY, "room_s": 3 * 3600},
        "at most 2d from now; it can be extended by 3h at most",
    ),
    Refusal.NO_LOGS: ({"island_id": 2, "state": "requested"}, "no pod to read logs from"),
    Refusal.LOGS_UNAVAILABLE: ({"island_id": 2, "previous": True}, "its previous run's log"),
    Refusal.NO_BOARD: ({}, "not set up on this islandbot"),
    Refusal.CLOCK_REQUEST_NOT_FOUND: ({"request_id": 11}, "no clock request 11"),
    Refusal.CLOCK_NOT_NOW: ({"island_id": 2, "state": "creating"}, "#2 is creating"),
    Refusal.CLOCK_OUT_OF_BOUNDS: (
        {"island_id": 2, "bound_s": 30 * DAY},
        "at most 30d away from real time",
    ),
    Refusal.START_CLOCK_OUT_OF_BOUNDS: ({"bound_s": 30 * DAY}, "at most 30d away"),
    Refusal.CLOCK_DECIDE_NOT_ALLOWED: ({"island_id": 2, "who": ["U1"]}, "may decide: <@U1>."),
    Refusal.CLOCK_REQUEST_CLOSED: ({"request_id": 11, "state": "expired"}, "already expired"),
    Refusal.UNKNOWN_BRANCH: ({"branch": "x", "known": ["dev", "weekly"]}, "dev, weekly"),
    Refusal.OVERRIDE_NOT_KEY_VALUE: ({"pair": "memory"}, "'memory' is not KEY=VALUE"),
    Refusal.OVERRIDE_NOT_ALLOWED: (
        {"key": "image", "branch": "dev", "allowed": []},
        "'image' cannot be set on dev islands; allowed: none",
    ),
    Refusal.OVERRIDE_BAD_VALUE: ({"key": "env.A"}, "env.A must be one line"),
    Refusal.OVERRIDE_NOT_MEMORY: ({"value": "lots"}, "'lots' is not a memory size"),
    Refusal.OVERRIDE_MEMORY_RANGE: (
        {"value": "64Gi", "low": "1Gi", "high": "4Gi"},
        "between 1Gi and 4Gi, not 64Gi",
    ),
    Refusal.REGISTRATION_UNAUTHORIZED: ({}, "missing or wrong registration token"),
    Refusal.REGISTRATION_STOPPED: ({"island_id": 2, "state": "stopped"}, "cannot register"),
    Refusal.RENDER_PORT_OUTSIDE_RANGE: (
        {"first_port": 1, "block_size": 3, "port_range": "30000-39999"},
        "--first-port 1",
    ),
    Refusal.RENDER_BAD_CLOCK: ({"clock": "soon"}, "--clock 'soon'"),
}


def test_every_refusal_has_an_example_here() -> None:
    assert set(SAMPLES) == set(Refusal), "a new refusal needs its words and an example"


@pytest.mark.parametrize("refusal", list(Refusal))
def test_each_refusal_is_worded_with_its_details(refusal: Refusal) -> None:
    detail, shown = SAMPLES[refusal]
    assert shown in refusals.text(UserError(refusal, **detail))


@pytest.mark.parametrize("refusal", list(Refusal))
def test_each_refusal_is_kept_as_data_and_worded_again_from_what_was_kept(
    refusal: Refusal,
) -> None:
    """The audit log keeps a refusal as its code and details (JSON): worded from what was
    kept, it reads as it read to the person refused."""
    detail, _shown = SAMPLES[refusal]
    error = UserError(refusal, **detail)
    kept = json.loads(json.dumps(error.data()))
    assert kept == {"refusal": refusal.value, "about": detail}
    again = UserError(Refusal(kept["refusal"]), **kept["about"])
    assert refusals.text(again) == refusals.text(error)


def test_the_kind_of_refusal_does_not_change_its_words_and_logs_get_the_data() -> None:
    quota = QuotaExceeded(Refusal.QUOTA_EXCEEDED, limit=1, island_ids=[4])
    assert quota.island_ids == [4]
    assert refusals.text(quota) == refusals.text(
        UserError(Refusal.QUOTA_EXCEEDED, limit=1, island_ids=[4])
    )
    missing = NotFound(Refusal.ISLAND_NOT_FOUND, island_id=3)
    assert str(missing) == "island_not_found {'island_id': 3}"  # for logs: no sentence
