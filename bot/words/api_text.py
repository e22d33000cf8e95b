"""The HTTP API's error texts.

The constants are marked for the catalogue (``N_``), not translated: the API says them in the
language it speaks for the request, ``api_text.said(api_text.API_BAD_QUERY)``."""

from __future__ import annotations

from bot.domain.registration import MAX_TEXT, Flaw, Problem
from bot.words.catalogue import N_, _

API_BAD_ISLAND_ID = N_("no such island: ids are positive whole numbers")


API_BAD_QUERY = N_("bad query")


API_DATABASE_DOWN = N_("the database is not available; try again")


API_BODY_UNREADABLE = N_("could not read the body")


API_NOT_JSON = N_("the body is not JSON")


API_NOT_JSON_PROBLEM = N_("body: expected a JSON object")


API_INVALID_REGISTRATION = N_("the registration is not valid")


def api_body_too_big(limit: int) -> str:
    return _("the body may be {limit} bytes at most", limit=limit)


API_READ_UNAUTHORIZED = N_(
    "the registry needs `Authorization: Bearer <token>` with the ISLANDBOT_API_READ_TOKEN "
    "this bot was given"
)
API_TOO_MANY_REFUSALS = N_(
    "too many refused registrations from this address; wait as Retry-After says"
)
API_TOO_MANY_REFUSALS_FOR_ISLAND = N_(
    "too many refused registrations for this island; wait as Retry-After says"
)
API_CI_OFF = N_(
    "refreshing a pool through the API is off: this bot was given no ISLANDBOT_API_CI_TOKEN"
)
API_CI_UNAUTHORIZED = N_(
    "refreshing a pool needs `Authorization: Bearer <token>` with the ISLANDBOT_API_CI_TOKEN "
    "this bot was given"
)


def said(message: str) -> str:
    """One of the texts above (``API_...``) in the current language."""
    return _(message)


def unknown_parameter(key: str) -> str:
    return _("{key}: unknown parameter", key=key)


def expected_one_of(key: str, known: str) -> str:
    return _("{key}: expected one of {known}", key=key, known=known)


def expected_length(key: str, most: int) -> str:
    return _("{key}: expected 1-{most} characters", key=key, most=most)


def expected_whole_number(key: str, low: int, high: int) -> str:
    return _("{key}: expected a whole number from {low} to {high}", key=key, low=low, high=high)


_FLAWS = {
    Flaw.NOT_AN_OBJECT: N_("the body must be a JSON object"),
    Flaw.UNKNOWN_FIELD: N_("{field}: unknown field"),
    Flaw.REQUIRED: N_("{field}: required"),
    Flaw.BAD_TEXT: N_("{field}: expected 1-{most} printable ASCII characters, no spaces"),
    Flaw.BAD_NODE: N_("{field}: expected the node's name (a DNS-1123 subdomain)"),
    Flaw.BAD_ADDRESS: N_("{field}: expected an IPv4 or IPv6 address"),
    Flaw.BAD_PORTS: N_("{field}: expected an object of port name to port number"),
    Flaw.UNKNOWN_PORT: N_("{field}: unknown port; known: {known}"),
    Flaw.BAD_PORT: N_("{field}: expected a port number 1-65535"),
}


def registration_problem(problem: Problem) -> str:
    """What is wrong with one field of an island's registration."""
    return _(
        _FLAWS[problem.flaw],
        field=problem.field,
        most=MAX_TEXT,
        known=", ".join(problem.known),
    )
