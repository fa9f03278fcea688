"""Every text that comes from outside is checked here, once, before anything stores or shows it.

Tokens, socket frames, chat, the HTTP API, forms and the embed SDK's config all pass through
these checks, so one rule holds everywhere:

- valid Unicode: no lone surrogate (``"\\ud800"`` parses from JSON but can be neither encoded
  as UTF-8 nor stored);
- no NUL and no other control character (PostgreSQL refuses a NUL in text; the others only
  hide things): multi-line text (chat) keeps line breaks and tabs, IDs and names have none;
- a length limit on each text, and for JSON a depth and a size limit, checked without
  recursing into a value nested 5,000 deep.

A refusal is ``InvalidText``: a ``ValueError`` whose ``message`` is for people and never
repeats the refused text (it may not even be encodable).
"""

from __future__ import annotations

import json
import math
import re

JSON_MAX_CHARS = 16 * 1024

# Control characters (C0, DEL, C1), lone surrogates and the Unicode line / paragraph separators.
_FORBIDDEN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
# The same, but line breaks (\n, \r, U+2028, U+2029) and tabs are allowed.
_FORBIDDEN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# The characters each allows, as regular-expression classes for schemas (the HTTP API's
# OpenAPI document). Surrogates are left out: JSON parsers and pydantic refuse them anyway.
LINE_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
MULTILINE_CHAR = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
# What can change the depth of a JSON text: a whole string (skipped), or a bracket.
_JSON_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|$)|[\[\]{}]', re.S)


class InvalidText(ValueError):
    """Text from outside that cannot be used. ``message`` says why, for people."""

    code = "invalid_text"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def clean_text(
    value: object, *, name: str, max_chars: int, multiline: bool = False, min_chars: int = 0
) -> str:
    """``value`` itself if it is a string that may be stored and shown; else ``InvalidText``.

    ``name`` names the field in the message. Nothing is trimmed: what is checked is what
    the caller stores."""
    if not isinstance(value, str):
        raise InvalidText(f"{name} must be a string.")
    bad = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_LINE).search(value)
    if bad:
        raise InvalidText(_why_refused(name, bad.group(), multiline=multiline))
    if len(value) > max_chars:
        raise InvalidText(f"{name} may be at most {max_chars} characters.")
    if len(value) < min_chars:
        at_least = "may not be empty" if min_chars == 1 else f"needs {min_chars} characters"
        raise InvalidText(f"{name} {at_least}.")
    return value


def _why_refused(name: str, char: str, *, multiline: bool) -> str:
    point = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"{name} is not valid Unicode text (a lone surrogate, {point})."
    if multiline:
        return f"{name} may not contain control characters but line breaks and tabs ({point})."
    return f"{name} may not contain line breaks or other control characters ({point})."


def check_json(
    value: object, *, name: str, max_depth: int = 16, max_chars: int = JSON_MAX_CHARS
) -> object:
    """``value`` itself if it is a parsed JSON value from outside that may be stored; else
    ``InvalidText``. Every key is checked like a name, every string like multi-line text;
    numbers must be finite; at most ``max_depth`` arrays / objects deep and ``max_chars`` long
    as compact JSON."""
    if json_depth_of(value, stop_after=max_depth) > max_depth:
        raise InvalidText(f"{name} is nested more than {max_depth} levels deep.")
    _check_json_value(value, name=name, max_chars=max_chars)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    if size > max_chars:
        raise InvalidText(f"{name} may be at most {max_chars} characters of JSON (it has {size}).")
    return value


def _check_json_value(value: object, *, name: str, max_chars: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidText(f"{name} must be a finite number.")
        return
    if isinstance(value, str):
        clean_text(value, name=name, max_chars=max_chars, multiline=True)
        return
    if not isinstance(value, dict | list):
        raise InvalidText(f"{name} must be JSON: an object, array, string, number or null.")
    if isinstance(value, list):
        items = ((f"{name}[{i}]", item) for i, item in enumerate(value))
    else:
        for key in value:
            clean_text(key, name=f"A key of {name}", max_chars=max_chars)
        items = ((f"{name}.{key}", item) for key, item in value.items())
    for where, item in items:
        _check_json_value(item, name=where, max_chars=max_chars)


def json_depth_of(value: object, *, stop_after: int) -> int:
    """How deep the lists and dicts of a parsed value nest, counted level by level without
    recursing; counting stops once past ``stop_after``."""
    depth, level = 0, [value]
    while depth <= stop_after:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [
            item
            for container in containers
            for item in (container.values() if isinstance(container, dict) else container)
        ]
    return depth


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without parsing it."""
    depth = deepest = 0
    for token in _JSON_DEPTH_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in ("]", "}"):
            depth -= 1
    return deepest


def loads_json(text: str | bytes, *, max_depth: int = 32, name: str = "The text") -> object:
    """Parse JSON from outside: ``InvalidText`` for malformed JSON, for text that is not
    UTF-8, for NaN / Infinity, and for nesting deeper than ``max_depth`` (refused before
    parsing: ``json.loads`` recurses and, deep enough, raises ``RecursionError``)."""
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidText(f"{name} is not UTF-8 text.") from exc
    if json_depth(text) > max_depth:
        raise InvalidText(f"{name} is nested more than {max_depth} levels deep.")
    try:
        return json.loads(text, parse_constant=lambda constant: _refuse_constant(name, constant))
    except InvalidText:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidText(f"{name} is not valid JSON.") from exc


def _refuse_constant(name: str, constant: str) -> object:
    raise InvalidText(f"{name} has {constant}: JSON numbers are finite.")
