"""The one error a rule raises. It lives outside ``rooms.services`` so that modules the
services import (``rooms.tokens``) can raise it too without an import cycle; services import
it from ``rooms.services.common``."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused request: ``code`` for programs, ``message`` for people. No transport in it:
    each entry point maps ``code`` to its close code or HTTP status, in a table of its own."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
