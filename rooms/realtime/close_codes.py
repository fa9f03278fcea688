"""The socket's one table from a refusal's error code to its websocket close code.

Services raise ``ServiceError(code, message)`` with no transport in it; this edge decides how
the socket closes (4000-4999 are the application's own; docs/protocol.md lists them). A code
not in the table closes with ``REFUSED`` (a refusal the client should not retry as is).
"""

from __future__ import annotations

CLOSE_CODES: dict[str, int] = {
    "token_missing": 4001,
    "token_invalid": 4002,
    "token_expired": 4003,
    "token_wrong_app": 4004,
    "token_wrong_room": 4004,
    "banned": 4005,
    "room_not_found": 4006,
    "bad_request": 4007,  # bad join options
    "too_many_messages": 4008,  # kept sending past the rate limit
    "session_replaced": 4009,
    "kicked": 4010,
    "room_ended": 4011,
    "token_expired_while_connected": 4012,
    "server_restarting": 4013,  # reconnect: the server is going down and coming back
    "origin_not_allowed": 4014,
}
REFUSED = 4000


def close_code_for(code: str) -> int:
    return CLOSE_CODES.get(code, REFUSED)
