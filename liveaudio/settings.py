"""Settings for liveaudio.

Everything a deployment changes comes from ``LIVEAUDIO_*`` environment variables; the defaults
are the embedded mode: SQLite, the in-memory channel layer, one process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIVEAUDIO_VAR_DIR", BASE_DIR / "var"))


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = os.environ.get("LIVEAUDIO_DEBUG", "0") == "1"
SECRET_KEY = os.environ.get(
    "LIVEAUDIO_SECRET_KEY", "dev-only-insecure-key-set-LIVEAUDIO_SECRET_KEY-in-production"
)
ALLOWED_HOSTS = _env_list("LIVEAUDIO_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "csp",
    "rooms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "liveaudio.urls"
ASGI_APPLICATION = "liveaudio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, object]:
    url = os.environ.get("LIVEAUDIO_DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parsed = urlparse(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 0,
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LIVEAUDIO_SQLITE_PATH", str(VAR_DIR / "db.sqlite3")),
        # Several sockets write at once: take the write lock at BEGIN (no upgrade deadlocks),
        # wait for it rather than failing, and let readers go on beside the writer.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        "TEST": {"NAME": os.environ.get("LIVEAUDIO_SQLITE_TEST_PATH") or None},
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Messages a socket's channel may hold before the layer drops new ones (silently). Channels'
# default, 100, is a join storm's worth in a room of 100: a socket busy sending its frames
# then lost updates. Messages are small (the state string is shared) and a socket drains
# its channel in microseconds once its loop gets to it; a loss is still repaired from the
# room's revision (rooms/realtime/watch.py).
CHANNEL_CAPACITY = int(os.environ.get("LIVEAUDIO_CHANNEL_CAPACITY", "2000"))
_redis_url = os.environ.get("LIVEAUDIO_REDIS_URL", "")
# Scale-out mode's Redis: the channel layer, and the per-sender rate of room commands
# (rooms/services/sender_rate.py), which all processes then share.
LIVEAUDIO_REDIS_URL = _redis_url
LIVEAUDIO_REDIS_PREFIX = os.environ.get("LIVEAUDIO_REDIS_PREFIX", "liveaudio")
# Longer than channels-redis's blocking read of a channel (BZPOPMIN, 5 s): redis-py 8 reads
# with a 5 s socket timeout by default, and a channel idle for 5 s then raised a
# TimeoutError out of `receive` instead of going round again.
REDIS_SOCKET_TIMEOUT = 10.0
if _redis_url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": _redis_url, "socket_timeout": REDIS_SOCKET_TIMEOUT}],
                "prefix": LIVEAUDIO_REDIS_PREFIX,
                "capacity": CHANNEL_CAPACITY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' own, with channel names that name their process (rooms/presence.py).
            "BACKEND": "rooms.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lobby"
LOGOUT_REDIRECT_URL = "lobby"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Set for `collectstatic` in production; WhiteNoise serves from the finders otherwise.
STATIC_ROOT = os.environ.get("LIVEAUDIO_STATIC_ROOT") or None
# Serve straight from the finders: the two README commands need no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The room page frames nothing and is framed by nobody; the embed view sets its own
# frame-ancestors from the app's allowed origins.
X_FRAME_OPTIONS = "DENY"

# Scripts and styles only from this server, or inline with this response's nonce; nothing
# inline without it, no eval (docs/operations.md). 'self' in connect-src also covers the
# room's socket (ws:/wss: on this host, CSP level 3). The embed page replaces frame-ancestors
# with its app's allowed origins and adds its config's image origins to img-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "media-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"rooms": {"handlers": ["console"], "level": "INFO"}},
}

# --- liveaudio ------------------------------------------------------------------------------
# The built-in app whose rooms signed-in users of this site open from the lobby.
LIVEAUDIO_SITE_APP_ID = 1
# A disconnected user keeps their seat this long, so a page reload does not lose it.
LIVEAUDIO_SEAT_GRACE_SECONDS = float(os.environ.get("LIVEAUDIO_SEAT_GRACE_SECONDS", "30"))
# Lifetime of the tokens the server mints for its own pages: the room's socket closes then
# ("Your session has expired"; the page's "Join again" loads a new one).
LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS = int(
    os.environ.get("LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS", str(6 * 3600))
)
LIVEAUDIO_MESSAGE_MAX_CHARS = 1000
LIVEAUDIO_HISTORY_MESSAGES = 50
# Per-connection flood guard: at most this many socket messages in any 10 s window.
LIVEAUDIO_SOCKET_MESSAGES_PER_10S = int(os.environ.get("LIVEAUDIO_SOCKET_MESSAGES_PER_10S", "60"))
LIVEAUDIO_SOCKET_MAX_BYTES = 16 * 1024
# The origins of this server's own pages, when its sockets' Host header does not tell them
# (behind a proxy that rewrites Host): comma-separated, e.g. https://rooms.example.
LIVEAUDIO_PUBLIC_ORIGINS = _env_list("LIVEAUDIO_PUBLIC_ORIGINS", "")

# Room properties (ZIM's room attributes): at most this many keys a room, and this many bytes
# of keys and values together. A key is 1-16 bytes and a value at most 1,024 (the database's).
LIVEAUDIO_ROOM_PROPERTIES_MAX_KEYS = 20
LIVEAUDIO_ROOM_PROPERTIES_MAX_BYTES = 5120
# Room commands (ZIM's room commands): at most this many bytes each (decoded), and this many
# a second from one sender (a user in a room, whatever sockets or server processes they use;
# the HTTP API's own commands count as one sender a room).
LIVEAUDIO_ROOM_COMMAND_MAX_BYTES = 1024
LIVEAUDIO_ROOM_COMMANDS_PER_SECOND = 10
# SEI (the seed's sendSEI): a JSON object of at most this many bytes (the seed's, ZEGO's
# real-time sequential data), at most this many a second from one socket.
LIVEAUDIO_SEI_MAX_BYTES = 4096
LIVEAUDIO_SEI_PER_SECOND = 30
# Emoji reactions (reaction.send): at most this many a second from one socket.
LIVEAUDIO_REACTIONS_PER_SECOND = 3

# --- media (WebRTC) -------------------------------------------------------------------------
# STUN/TURN servers for the browsers and the server's peers, as RTCIceServer dicts:
# LIVEAUDIO_ICE_SERVERS='[{"urls": "turn:turn.example.com", "username": "u", "credential": "p"}]'
LIVEAUDIO_ICE_SERVERS = json.loads(os.environ.get("LIVEAUDIO_ICE_SERVERS", "[]"))
# Tests and benchmarks keep every media path on loopback: the server offers only 127.0.0.1.
LIVEAUDIO_ICE_LOOPBACK_ONLY = os.environ.get("LIVEAUDIO_ICE_LOOPBACK_ONLY", "0") == "1"
# A peer that has not connected by then is closed and cleaned up.
LIVEAUDIO_MEDIA_CONNECT_TIMEOUT = float(os.environ.get("LIVEAUDIO_MEDIA_CONNECT_TIMEOUT", "15"))
LIVEAUDIO_SDP_MAX_CHARS = 12_000  # within LIVEAUDIO_SOCKET_MAX_BYTES
# The media plane (peers, mixers) runs in a worker process of its own; 0 runs it on a thread
# of the server process instead (the in-process tests do, to inspect peers).
LIVEAUDIO_MEDIA_PROCESS = os.environ.get("LIVEAUDIO_MEDIA_PROCESS", "1") == "1"
# Scale-out: "shared" drives the deployment's media workers (`python -m rooms.media.node`,
# mixers and relays on any host, met in LIVEAUDIO_REDIS_URL) instead of a worker of this
# process's own, so a room's participants may reach any daphne process.
LIVEAUDIO_MEDIA_WORKERS = os.environ.get("LIVEAUDIO_MEDIA_WORKERS", "own")
# Benchmarks: /internal/media-stats/ answers (loopback callers only) when this is on.
LIVEAUDIO_MEDIA_STATS = os.environ.get("LIVEAUDIO_MEDIA_STATS", "0") == "1"
# Raised hands and invitations expire after this long.
LIVEAUDIO_SEAT_TICKET_SECONDS = float(os.environ.get("LIVEAUDIO_SEAT_TICKET_SECONDS", "60"))

# --- processes: presence and shutdown (docs/operations.md) ----------------------------------
# Each server process refreshes its liveness record this often and sweeps for members whose
# process is gone; a record not refreshed for STALE seconds is a dead process.
LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS = float(
    os.environ.get("LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS", "5")
)
LIVEAUDIO_PRESENCE_STALE_SECONDS = float(os.environ.get("LIVEAUDIO_PRESENCE_STALE_SECONDS", "30"))
# On SIGTERM: sockets and requests get this long to finish; the process exits at DEADLINE
# whatever still runs.
LIVEAUDIO_SHUTDOWN_DRAIN_SECONDS = float(os.environ.get("LIVEAUDIO_SHUTDOWN_DRAIN_SECONDS", "5"))
LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS = float(
    os.environ.get("LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS", "9")
)

# --- the media player (docs/operations.md) --------------------------------------------------
# Uploaded and fetched media files go through Django's storage API ("default" in STORAGES:
# the file system under MEDIA_ROOT unless a deployment names another backend). The media
# worker reads a local path: the storage's own, or a copy in LIVEAUDIO_MEDIA_CACHE_DIR.
MEDIA_ROOT = os.environ.get("LIVEAUDIO_MEDIA_ROOT", str(VAR_DIR / "media"))
MEDIA_URL = "/media-files/"  # never served: files reach listeners only through the mixer
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LIVEAUDIO_MEDIA_CACHE_DIR = os.environ.get(
    "LIVEAUDIO_MEDIA_CACHE_DIR", str(VAR_DIR / "media-cache")
)
# Uploads in progress (and URL downloads) are assembled here before the probe accepts them.
LIVEAUDIO_MEDIA_UPLOAD_DIR = os.environ.get(
    "LIVEAUDIO_MEDIA_UPLOAD_DIR", str(VAR_DIR / "media-uploads")
)
LIVEAUDIO_MEDIA_MAX_BYTES = int(os.environ.get("LIVEAUDIO_MEDIA_MAX_BYTES", str(200 * 1024**2)))
LIVEAUDIO_MEDIA_MAX_DURATION_SECONDS = float(
    os.environ.get("LIVEAUDIO_MEDIA_MAX_DURATION_SECONDS", str(4 * 3600))
)
LIVEAUDIO_MEDIA_CHUNK_BYTES = 1024 * 1024  # within DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)
# An upload not finished within this long is dropped (its bytes deleted) by the next upload.
LIVEAUDIO_MEDIA_UPLOAD_TTL_SECONDS = float(
    os.environ.get("LIVEAUDIO_MEDIA_UPLOAD_TTL_SECONDS", "3600")
)
LIVEAUDIO_MEDIA_UPLOADS_PER_ROOM = 4  # unfinished uploads a room may hold at once
# Fetching an https:// URL (only from hosts on the app's remote media list): the whole
# download must finish within this long, and no read may wait longer than the read timeout.
LIVEAUDIO_MEDIA_FETCH_SECONDS = float(os.environ.get("LIVEAUDIO_MEDIA_FETCH_SECONDS", "60"))
LIVEAUDIO_MEDIA_FETCH_READ_SECONDS = float(
    os.environ.get("LIVEAUDIO_MEDIA_FETCH_READ_SECONDS", "10")
)
# TESTS ONLY: let a fetch reach a loopback address (the test's own HTTPS server), with this
# CA file. Private, link-local and reserved addresses stay refused. Never in production.
LIVEAUDIO_MEDIA_FETCH_ALLOW_LOOPBACK = False
LIVEAUDIO_MEDIA_FETCH_CA_FILE = ""
