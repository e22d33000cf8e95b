"""Every reason a clock change was not made has its words, made from the fault's code and
details as the audit log keeps them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.app.clock_file import ClockNotMoved
from bot.domain.island_clock import ClockFault
from bot.words import clock_text

# one example of each fault's details, and a part of the sentence that must show them
SAMPLES: dict[ClockFault, tuple[dict[str, Any], str]] = {
    ClockFault.BUSY: ({"island_id": 7}, "Another clock change of island #7"),
    ClockFault.CLUSTER: ({"message": "pods/exec: 503 busy"}, "pods/exec: 503 busy"),
    ClockFault.CONTENT_REFUSED: ({"content": "@soon"}, "refusing to write '@soon'"),
    ClockFault.POD_GONE: ({}, "the island's pod is gone"),
    ClockFault.ENV_MISSING: ({"variable": "FAKETIME_X"}, "has no FAKETIME_X"),
    ClockFault.WRITE_FAILED: (
        {"exit_code": 2, "stderr": "sh: can't create"},
        "failed (exit 2): 'sh: can'\"'\"'t create'",
    ),
    ClockFault.NOT_MOVED: ({"seen_s": 3.4, "expected_s": 86400}, "it reads 3s from real time"),
}


def test_every_fault_has_an_example_here() -> None:
    assert set(SAMPLES) == set(ClockFault), "a new fault needs its words and an example"


@pytest.mark.parametrize("fault", list(ClockFault))
def test_each_fault_is_kept_as_data_and_worded_from_what_was_kept(fault: ClockFault) -> None:
    detail, shown = SAMPLES[fault]
    kept = json.loads(json.dumps(ClockNotMoved(fault, **detail).data()))
    assert kept == {"failure": fault.value, "about": detail}
    assert shown in clock_text.clock_fault(ClockFault(kept["failure"]), kept["about"])


def test_an_unreadable_clock_is_said_so() -> None:
    text = clock_text.clock_fault(ClockFault.NOT_MOVED, {"seen_s": None, "expected_s": 60})
    assert "it could not be read" in text
