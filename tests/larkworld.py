"""The whole bot with Lark as its chat, built by ``bot.run.chats.chat_bot`` as ``islandbot run``
builds it from the Lark settings, against fakes that speak the real protocols: the database,
kubesim over HTTP through the ``kubernetes`` client, the fake Lark Open API over HTTP through
``lark-oapi``, and the bot's own HTTP server receiving Lark's callbacks (encrypted and signed
as Lark sends them, unless a test asks otherwise), or, with ``long_connection``, Lark's events
pushed over the SDK's long connection to the fake long-connection server (``tests.fakelark_ws``),
which serves the Open API on the same origin, as Lark does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.chat.front import ChatFront
from bot.chat.lark.client import TOKENS
from bot.domain.records import IslandRecord
from bot.infra.kubernetes.client import KubeSettings
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.run.chats import chat_bot
from bot.run.compose import Bot, Tuning
from bot.run.settings import Settings
from bot.run.settings_env import load_settings
from kubesim import KubeSim, SimConfig
from tests import fakelark, fakelark_events, fakelark_ws
from tests.fakelark import FakeLark
from tests.fakelark_ws import FakeLarkWS, callback_data
from tests.kube_access import cluster
from tests.slackworld import SIM

GROUP = "oc_islands"
ADMIN = "ou_admin"


def lark_settings(
    db: Database,
    sim: KubeSim,
    fake: FakeLark,
    *,
    encrypt: bool = True,
    http: bool = True,
    extra: dict[str, str] | None = None,
) -> Settings:
    """What ``islandbot run`` would read from its environment to serve a team in Lark."""
    env = {
        "ISLANDBOT_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "ISLANDBOT_KUBECONFIG": str(sim.kubeconfig_path),
        "ISLANDBOT_PORT_RANGE": "37000-37299",
        "ISLANDBOT_ADMINS": ADMIN,
        "ISLANDBOT_MAX_TTL": "2d",
        "ISLANDBOT_READY_TIMEOUT": "30s",
        "ISLANDBOT_READY_PROBE_INTERVAL": "1s",
        "ISLANDBOT_HTTP_ADDRESS": "127.0.0.1:0",
        "ISLANDBOT_LARK_API_URL": fake.api_url,
        "LARK_APP_ID": fakelark_events.APP_ID,
        "LARK_APP_SECRET": fakelark_events.APP_SECRET,
        **(extra or {}),
    }
    if http:
        env["LARK_VERIFICATION_TOKEN"] = fakelark_events.VERIFICATION_TOKEN
    if http and encrypt:
        env["LARK_ENCRYPT_KEY"] = fakelark_events.ENCRYPT_KEY
    return replace(load_settings(env), reconcile_interval=timedelta(seconds=0.3))


def lark_tuning(**kw: Any) -> Tuning:
    return Tuning(
        kube=KubeSettings(namespace="islands", request_timeout_s=3, attempts=2, backoff_s=0.01),
        probe_timeout_s=0.3,
        **kw,
    )


class LarkWorld:
    """The bot serving a team in Lark over HTTP callbacks, its lifecycle loop running; given
    ``ws`` (a fake long-connection server that serves ``fake`` on its origin too), over the
    long connection instead: no verification token, the Open API at ``ws.domain``, and every
    event pushed over the socket."""

    def __init__(
        self,
        db: Database,
        sim: KubeSim,
        fake: FakeLark,
        *,
        encrypt: bool = True,
        ws: FakeLarkWS | None = None,
        **kw: Any,
    ) -> None:
        self.db, self.sim, self.fake, self.ws = db, sim, fake, ws
        self.encrypt_key = fakelark_events.ENCRYPT_KEY if encrypt else None
        env = kw.pop("env", None) or {}
        if ws is not None:
            assert ws.open_api is fake, "the long connection's server must serve this Open API"
            env = {"ISLANDBOT_LARK_API_URL": ws.domain, **env}
        self.settings = lark_settings(db, sim, fake, encrypt=encrypt, http=ws is None, extra=env)
        # the SDK keeps tokens for the whole process, by app id: an earlier test's fake's token
        # would be refused here (the bot recovers, as it must, but not in the time a test waits)
        TOKENS.drop(fakelark_events.APP_ID)
        self.bot: Bot = chat_bot(self.settings, tuning=lark_tuning(**kw)).start()
        assert self.bot.front is not None and self.bot.server is not None
        self.front: ChatFront = self.bot.front
        self.url = f"{self.bot.server.url}/lark/events"
        self.closed = False

    def close(self) -> None:
        """Stop the bot (once: a test may have stopped it already)."""
        if not self.closed:
            self.closed = True
            self.bot.stop()

    # ---- talking to the bot as Lark does -----------------------------------------------------

    def deliver(self, payload: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
        """POST ``payload`` to the bot's callback URL as Lark does (encrypted and signed when
        the world has an encrypt key); (status, answer). Over the long connection: pushed as
        an event frame; (the answer frame's code, the callback's result or ``{}``)."""
        if self.ws is not None:
            reply = self.ws.push_event(payload, **kw)
            return int(reply["code"]), callback_data(reply) or {}
        headers, body = fakelark_events.callback_request(
            payload, encrypt_key=self.encrypt_key, **kw
        )
        return fakelark_events.post_callback(self.url, headers, body)

    def say(
        self, user: str, text: str, *, chat: str = GROUP, mention: bool = True, **kw: Any
    ) -> dict[str, Any]:
        """``user`` writes ``text`` in ``chat`` (a group: mentioning the bot first unless told
        not to; ``chat=user``: their chat with the bot); the event Lark delivered. Raises when
        the bot did not answer it 200."""
        group = not chat.startswith("ou_")
        mentions = [(fakelark_events.BOT_OPEN_ID, "islandbot")] if group and mention else []
        event = fakelark_events.message_event(
            sender=user,
            chat_id=chat if group else fakelark.p2p_chat(user),
            chat_type="group" if group else "p2p",
            text=("@_user_1 " if mentions else "") + text,
            mentions=mentions,
            **kw,
        )
        self.fake.record_event(event)
        status, answer = self.deliver(event)
        assert status == 200, (status, answer)
        return event

    def card(self, message_id: str) -> dict[str, Any]:
        return dict(self.fake.message(message_id)["content"])

    def buttons(self, message_id: str) -> dict[str, dict[str, Any]]:
        """The card's buttons by their text: their values."""
        found = {}
        for element in self.card(message_id).get("elements", []):
            for action in element.get("actions", []) if element.get("tag") == "action" else []:
                found[action["text"]["content"]] = action["value"]
        return found

    def click(
        self, user: str, message_id: str, label: str, **kw: Any
    ) -> tuple[int, dict[str, Any]]:
        """``user`` clicks the button ``label`` (its text, or the start of it) on the card."""
        buttons = self.buttons(message_id)
        value = next(v for text, v in buttons.items() if text.startswith(label))
        event = fakelark_events.card_action_event(
            operator=user,
            message_id=message_id,
            chat_id=self.fake.message(message_id)["chat_id"],
            value=value,
            **kw,
        )
        return self.deliver(event)

    # ---- what the bot did --------------------------------------------------------------------

    def texts(self, chat: str) -> list[str]:
        """The text of each message the bot sent to ``chat`` (a person: their chat with it)."""
        chat_id = fakelark.p2p_chat(chat) if chat.startswith("ou_") else chat
        return [shown(m) for m in self.fake.messages(chat_id) if m["sender"] == self.fake.app_id]

    def told(self, user: str, pattern: str, timeout: float = 20) -> str:
        """The message the bot sent ``user`` directly that contains ``pattern``."""
        return str(
            self.until(lambda: next((t for t in self.texts(user) if pattern in t), None), timeout)
        )

    def thread(self, island: IslandRecord) -> list[str]:
        assert island.chat_thread is not None
        return [shown(m) for m in self.fake.thread(island.chat_thread)]

    def island(self, island_id: int) -> IslandRecord:
        return IslandStore(self.db).get(island_id)

    def islands(self) -> list[IslandRecord]:
        return IslandStore(self.db).live()

    def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        return self.fake.wait_for(check, timeout)

    def started(self, count: int = 1) -> list[IslandRecord]:
        """Wait for ``count`` islands with a root card; return them, lowest id first."""
        return list(
            self.until(
                lambda: (
                    [i for i in self.islands() if i.chat_thread]
                    if len([i for i in self.islands() if i.chat_thread]) >= count
                    else None
                )
            )
        )


def shown(message: dict[str, Any]) -> str:
    """A message's words as a reader sees them: a text's text, a card's texts line by line."""
    content = message["content"]
    if message["msg_type"] == "text":
        return str(content.get("text", ""))
    if message["msg_type"] != "interactive":
        return f"[{message['msg_type']}]"
    lines = []
    for element in content.get("elements", []):
        if element.get("tag") == "div":
            if element.get("text"):
                lines.append(str(element["text"].get("content", "")))
            lines.extend(str(f["text"]["content"]) for f in element.get("fields", []))
        elif element.get("tag") == "markdown":
            lines.append(str(element.get("content", "")))
        elif element.get("tag") == "note":
            lines.extend(str(e.get("content", "")) for e in element.get("elements", []))
        elif element.get("tag") == "action":
            lines.append("  ".join(f"[{a['text']['content']}]" for a in element["actions"]))
    return "\n".join(lines)


def ready_island(world: LarkWorld, user: str = "ou_alice") -> int:
    """``user`` starts an island on dev in the group; its id once it is ready and its ready
    reply is in its card's thread."""
    world.say(user, "start dev")
    island = world.started()[-1]
    world.until(lambda: any("is ready" in t for t in world.thread(island)))
    world.until(lambda: world.island(island.id).state == "ready")
    return island.id


@contextmanager
def lark_world(
    db: Database,
    tmp_path: Path,
    *,
    lark: FakeLark | None = None,
    long_connection: bool = False,
    sim: SimConfig = SIM,
    **kw: Any,
) -> Iterator[LarkWorld]:
    """The bot on Lark (HTTP callbacks, encrypted) against kubesim, under the RBAC we ship.
    ``long_connection``: over the long connection instead, to a fake long-connection server
    (``world.ws``) that serves the fake Open API on its own origin; yielded once connected.
    ``sim``: the cluster's nodes and timings (``tests.slackworld.SIM`` unless told)."""
    with (
        cluster(sim, tmp_path / "kubeconfig", access="rbac") as kubesim,
        fakelark.serving(lark or FakeLark()) as fake,
        _long_connection_server(fake if long_connection else None) as ws,
    ):
        world = LarkWorld(db, kubesim, fake, ws=ws, **kw)
        try:
            if ws is not None:
                ws.wait_connected(10)
            yield world
        finally:
            world.close()


@contextmanager
def _long_connection_server(open_api: FakeLark | None) -> Iterator[FakeLarkWS | None]:
    """A fake long-connection server for the app, serving ``open_api`` too; none without."""
    if open_api is None:
        yield None
        return
    server = FakeLarkWS(open_api.app_id, open_api.app_secret, open_api=open_api)
    with fakelark_ws.serving(server) as ws:
        yield ws
