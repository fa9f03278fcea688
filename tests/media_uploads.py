"""Uploading a real file as the page does: the HTTP upload wire, with the page's token."""

from __future__ import annotations

import json
from pathlib import Path

from django.test import Client

from rooms.models import MediaFile, Room
from rooms.services.mediafiles import media_accept
from rooms.tokens import token_mint

ORIGIN = "http://testserver"  # the test client's own host: this server's own page


def page_token(room: Room, user_id: str, role: str | None = "host") -> str:
    return token_mint(app=room.app, room_id=room.room_id, user_id=user_id, user_name="U", role=role)


def uploads_url(room: Room, rest: str = "") -> str:
    return f"/media/{room.app.app_id}/{room.room_id}/uploads/{rest}"


def call(client: Client, method: str, url: str, token: str, body: bytes | dict = b"", **kw):
    data = json.dumps(body) if isinstance(body, dict) else body
    return getattr(client, method)(
        url,
        data=data,
        content_type="application/json" if isinstance(body, dict) else "application/octet-stream",
        headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}", **kw.pop("headers", {})},
        **kw,
    )


def upload(client: Client, room: Room, token: str, path: Path, *, name: str | None = None):
    """The whole upload; returns the finish (or first refused) response."""
    data = path.read_bytes()
    started = call(
        client, "post", uploads_url(room), token, {"name": name or path.name, "size": len(data)}
    )
    if started.status_code != 201:
        return started
    upload_id, chunk = started.json()["uploadID"], started.json()["chunkSize"]
    for offset in range(0, len(data), chunk):
        part = call(
            client,
            "put",
            uploads_url(room, f"{upload_id}/?offset={offset}"),
            token,
            data[offset : offset + chunk],
        )
        if part.status_code != 200:
            return part
    return call(client, "post", uploads_url(room, f"{upload_id}/finish/"), token)


def stored_media(room: Room, path: Path) -> MediaFile:
    """A file probed and kept for the room as an upload would be (by the HTTP API)."""
    copy = path.with_name(f"copy-{path.name}")
    copy.write_bytes(path.read_bytes())
    extension = path.suffix[1:]
    return media_accept(room=room, actor=None, path=copy, name=path.name, extension=extension)
