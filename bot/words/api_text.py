"""The HTTP API's error texts."""

from __future__ import annotations

API_BAD_ISLAND_ID = "no such island: ids are positive whole numbers"


API_BAD_QUERY = "bad query"


API_DATABASE_DOWN = "the database is not available; try again"


API_BODY_UNREADABLE = "could not read the body"


API_NOT_JSON = "the body is not JSON"


API_NOT_JSON_PROBLEM = "body: expected a JSON object"


API_INVALID_REGISTRATION = "the registration is not valid"


def api_body_too_big(limit: int) -> str:
    return f"the body may be {limit} bytes at most"


API_READ_UNAUTHORIZED = (
    "the registry needs `Authorization: Bearer <token>` with the ISLANDBOT_API_READ_TOKEN "
    "this bot was given"
)
API_TOO_MANY_REFUSALS = "too many refused registrations from this address; wait as Retry-After says"
API_TOO_MANY_REFUSALS_FOR_ISLAND = (
    "too many refused registrations for this island; wait as Retry-After says"
)
API_CI_OFF = (
    "refreshing a pool through the API is off: this bot was given no ISLANDBOT_API_CI_TOKEN"
)
API_CI_UNAUTHORIZED = (
    "refreshing a pool needs `Authorization: Bearer <token>` with the ISLANDBOT_API_CI_TOKEN "
    "this bot was given"
)
