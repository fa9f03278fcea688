"""Request bodies are parsed by ``rooms.text.loads_json``: nesting and NaN are refused before
the schema sees them, as for every JSON from outside."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.parser import Parser

from rooms.text import loads_json

MAX_BODY_DEPTH = 8  # the deepest body the schemas take is 2 levels


class BodyParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict:
        # ninja answers 400 for any error here; rooms.api.errors shows InvalidText's message.
        return loads_json(request.body, max_depth=MAX_BODY_DEPTH, name="The body")  # type: ignore[return-value]
