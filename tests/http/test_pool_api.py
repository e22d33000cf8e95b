"""The warm pools over real HTTP, through the whole bot (the demo's wiring, kubesim's islands
registering as seed.sh does): the code version each island booted, CI's refresh, the pools'
view, and the registry's owner of a claimed island. On SQLite and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.domain.pool import POOL_OWNER
from bot.run.demo import Demo
from bot.run.settings import Secret
from tests.demoworld import FAST, demo_on, start, until
from tests.http.test_api import call

REGISTERING = replace(FAST, register_islands=True, code_version="build-1")
CI_TOKEN = "ci-token-0123456789abcdef"


def warm(demo: Demo) -> list[int]:
    """The ids of the dev pool's ready islands."""
    return [
        i.id
        for i in demo.islands.live(branch="dev")
        if i.owner_id == POOL_OWNER and i.state == "ready"
    ]


def test_islands_booting_newer_code_renew_the_pool_and_ci_can_say_so_itself(
    db_url: str, tmp_path: Path
) -> None:
    with demo_on(
        db_url,
        tmp_path,
        sim=REGISTERING,
        require_registration=True,
        pools={"dev": 1},
        api_ci_token=Secret(CI_TOKEN),
    ) as (demo, sim):
        (old,) = until(lambda: warm(demo) or None)
        assert demo.islands.get(old).code_version == "build-1"
        status, body, _ = call(demo, "GET", "/api/v1/pools")
        assert status == 200
        (dev,) = [p for p in body["pools"] if p["branch"] == "dev"]
        assert (dev["size"], dev["size_from"], dev["ready"]) == (1, "setting", 1)
        assert dev["code_version"] == "build-1"

        # CI updates the shared code; a fresh island (a `set` one) boots and registers it
        sim.set_code_version("build-2")
        fresh = start(demo, "bob", "dev set memory=1Gi")
        until(lambda: demo.islands.get(fresh).state == "ready")
        assert demo.islands.get(fresh).code_version == "build-2"
        # the warm island that booted build-1 is never handed out: it is renewed
        until(lambda: demo.islands.get(old).state in ("stopping", "stopped"))
        (new,) = until(lambda: warm(demo) or None)
        assert new != old and demo.islands.get(new).code_version == "build-2"

        # CI says so itself (a push that changed no file the listing sees)
        assert call(demo, "POST", "/api/v1/pools/dev/refresh")[0] == 401
        assert call(demo, "POST", "/api/v1/pools/dev/refresh", token="wrong" * 5)[0] == 401
        status, body, _ = call(demo, "POST", "/api/v1/pools/nope/refresh", token=CI_TOKEN)
        assert status == 404 and "nope" in body["error"]
        status, body, _ = call(demo, "POST", "/api/v1/pools/dev/refresh", token=CI_TOKEN)
        assert status == 200 and body == {"branch": "dev", "renewed": 1}
        until(lambda: demo.islands.get(new).state in ("stopping", "stopped"))
        (newest,) = until(lambda: warm(demo) or None)

        # claimed: the registry shows its owner from then on
        mine = start(demo, "alice")
        assert mine == newest
        status, island, _ = call(demo, "GET", f"/api/v1/islands/{mine}")
        assert status == 200 and island["owner"] == {"id": "alice", "name": "alice"}
        assert island["pooled"] is False and island["claimed_at"] is not None
        status, island, _ = call(demo, "GET", f"/api/v1/islands/{fresh}")
        assert island["claimed_at"] is None and island["registration"]["code"] == "build-2"


def test_refreshing_a_pool_is_off_without_a_ci_token(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path, pools={"dev": 0}) as (demo, _sim):
        status, body, _ = call(demo, "POST", "/api/v1/pools/dev/refresh", token=CI_TOKEN)
        assert status == 403 and "ISLANDBOT_API_CI_TOKEN" in body["error"]
        status, body, _ = call(demo, "GET", "/api/v1/pools")
        assert status == 200 and body == {"pools": []}
