"""The embedded demo's console: its help and its own answers."""

from __future__ import annotations

from bot.words.catalogue import N_, _, n_, p_
from bot.words.formatting import island_ref

# The console's commands (left) are typed as they are in every language; shown with demo_help().
DEMO_HELP = N_(
    """\
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
)


def demo_help() -> str:
    """The console's help, in the current language."""
    return _(DEMO_HELP)


def demo_banner(*, database: str, api_url: str, kubeconfig: str, namespace: str) -> str:
    return _(
        "islandbot demo: database {database}; HTTP API at {api_url} (try {api_url}/healthz)\n"
        "The cluster: `KUBECONFIG={kubeconfig} kubectl get pods -n {namespace} -o wide`\n"
        "Type `help` for the console's commands, `/island help` for the bot's.",
        database=database,
        api_url=api_url,
        kubeconfig=kubeconfig,
        namespace=namespace,
    )


def demo_board(user: str, url: str) -> str:
    return _(
        "The team board, as {user} (open it in a browser; `/island board` gives one): {url}",
        user=user,
        url=url,
    )


def demo_unknown_line(line: str) -> str:
    return _("Not a console command: `{line}`. Type `help`.", line=line[:80])


def demo_bad_user(word: str) -> str:
    return _(
        "`{word}` is not a user name: `@` then 1-40 lowercase letters, digits, `.`, `_` "
        "or `-`, like `@bob`.",
        word=word[:50],
    )


def demo_bad_seconds(verb: str, text: str) -> str:
    return _(
        "`{verb} {text}`: expected a number of seconds from 0 to 600.", verb=verb, text=text[:40]
    )


def demo_no_button(which: str) -> str:
    return _(
        "There is no button `{which}` to press (any more): press takes the number shown "
        "as [b<number>] with a message, like `press 4`.",
        which=which[:20],
    )


def demo_not_settled(seconds: float, islands: list[int]) -> str:
    if not islands:
        return _(
            "Still not settled after {seconds} s: notices still queued.",
            seconds=format(seconds, "g"),
        )
    return _(
        "Still not settled after {seconds} s: {islands}.",
        seconds=format(seconds, "g"),
        islands=", ".join(island_ref(i) for i in islands[:10]),
    )


def demo_bad_fault(text: str) -> str:
    return _(
        "`fault {text}`: the fault this demo makes is `fault memory-climb ID`.", text=text[:40]
    )


def demo_no_fault_here() -> str:
    return _("Faults are the embedded cluster's; this demo runs on a real cluster.")


def demo_fault_failed(island_id: int, exc: Exception) -> str:
    return _(
        "Island {island}'s memory cannot climb now: {error}",
        island=island_ref(island_id),
        error=str(exc)[:200],
    )


def demo_memory_climbing(island_id: int, seconds: float) -> str:
    return _(
        "Island {island}'s memory now climbs to its limit over {seconds} s; "
        "its owner is warned before the cluster OOMKills it.",
        island=island_ref(island_id),
        seconds=format(seconds, "g"),
    )


# ---- the console chat's frame around each message (what Slack's window shows) -------------


def console_command(user: str, where: str) -> str:
    return _("{user} in {where}>", user=user, where=where)


def console_direct(user: str) -> str:
    return _("DM {user}", user=user)


def console_thread() -> str:
    return _("(thread)")


def console_broadcast() -> str:
    return _("(also sent to the channel)")


def console_updated() -> str:
    return _("now:")


def console_only_to(user: str) -> str:
    return _("(to {user} only)", user=user)


def console_file() -> str:
    return p_("a shared file", "file")


def console_home_of(user: str) -> str:
    return _("home of {user}:", user=user)


def console_earlier_lines(count: int) -> str:
    return n_(
        "... ({count} earlier line in the file)", "... ({count} earlier lines in the file)", count
    )


def console_field(label: str, value: str) -> str:
    """A field of a message (``*Host*`` over its value in Slack) on one line."""
    return p_("a message's field", "{label}: {value}", label=label, value=value)
