"""The embedded demo's console: its help and its own answers."""

from __future__ import annotations

from bot.words.formatting import island_ref

DEMO_HELP = """\
The demo's console: you are in #islands as the current user (alice at first).
  /island start dev            any /island command (`/island help` lists them)
  @bob /island start weekly    as bob; bob stays the current user
  @carol                       switch to carol
  press 4                      press the button shown as [b4]
  home                         your home page (your islands and the team's)
  wait [SECONDS]               until no island is starting or stopping (default 120 s)
  sleep SECONDS                pause (for scripts)
  fault memory-climb ID        the island's memory climbs to its limit (its owner is warned
                               before the cluster OOMKills it)
  quit                         stop the demo (Ctrl-D too)"""


def demo_banner(*, database: str, api_url: str, kubeconfig: str, namespace: str) -> str:
    return (
        f"islandbot demo: database {database}; HTTP API at {api_url} (try {api_url}/healthz)\n"
        f"The cluster: `KUBECONFIG={kubeconfig} kubectl get pods -n {namespace} -o wide`\n"
        "Type `help` for the console's commands, `/island help` for the bot's."
    )


def demo_board(user: str, url: str) -> str:
    return f"The team board, as {user} (open it in a browser; `/island board` gives one): {url}"


def demo_unknown_line(line: str) -> str:
    return f"Not a console command: `{line[:80]}`. Type `help`."


def demo_bad_user(word: str) -> str:
    return (
        f"`{word[:50]}` is not a user name: `@` then 1-40 lowercase letters, digits, `.`, `_` "
        "or `-`, like `@bob`."
    )


def demo_bad_seconds(verb: str, text: str) -> str:
    return f"`{verb} {text[:40]}`: expected a number of seconds from 0 to 600."


def demo_no_button(which: str) -> str:
    return (
        f"There is no button `{which[:20]}` to press (any more): press takes the number shown "
        "as [b<number>] with a message, like `press 4`."
    )


def demo_not_settled(seconds: float, islands: list[int]) -> str:
    waiting = ", ".join(island_ref(i) for i in islands[:10]) or "notices still queued"
    return f"Still not settled after {seconds:g} s: {waiting}."


def demo_bad_fault(text: str) -> str:
    return f"`fault {text[:40]}`: the fault this demo makes is `fault memory-climb ID`."


def demo_no_fault_here() -> str:
    return "Faults are the embedded cluster's; this demo runs on a real cluster."


def demo_fault_failed(island_id: int, exc: Exception) -> str:
    return f"Island {island_ref(island_id)}'s memory cannot climb now: {str(exc)[:200]}"


def demo_memory_climbing(island_id: int, seconds: float) -> str:
    return (
        f"Island {island_ref(island_id)}'s memory now climbs to its limit over {seconds:g} s; "
        "its owner is warned before the cluster OOMKills it."
    )
