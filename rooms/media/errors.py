"""The one exception the media engine raises to its callers (the socket consumer)."""

from __future__ import annotations


class MediaError(Exception):
    """A request the media engine refuses, with a stable machine-readable `code`.

    The consumer forwards `code` and `message` to the browser as they are, so the
    codes are part of the socket protocol: `bad_sdp`, `bad_type`, `no_audio`,
    `unsupported_media`, `closed`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
