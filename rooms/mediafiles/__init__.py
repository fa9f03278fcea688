"""The media player's files: the PyAV probe that accepts or refuses a file, the storage it
goes to, and the guarded fetch of an ``https://`` URL. The rules (who, limits, the room's
files and its playback) are ``rooms.services.mediafiles`` and ``rooms.services.media``."""
