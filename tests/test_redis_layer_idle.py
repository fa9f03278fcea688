"""The scale-out mode's channel layer (channels-redis, as liveaudio/settings.py configures it)
waits on an idle channel as long as it must.

channels-redis reads a channel with a blocking BZPOPMIN of 5 s and goes round again; redis-py
8 reads sockets with a 5 s timeout by default, so a channel idle for 5 s raised a redis
TimeoutError out of `receive` (a socket consumer, a media worker's command loop) instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import asyncio, django
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    try:
        await asyncio.wait_for(layer.receive(channel), 7)
    except asyncio.TimeoutError as exc:
        print("waited" if type(exc) is asyncio.TimeoutError and not str(exc) else repr(exc))
    except Exception as exc:
        print("raised", repr(exc))

asyncio.run(main())
"""


def test_a_channel_idle_for_longer_than_a_blocking_read_is_still_waited_on() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "liveaudio.settings",
        "LIVEAUDIO_REDIS_URL": "redis://127.0.0.1:6379/0",
        "LIVEAUDIO_REDIS_PREFIX": f"liveaudio-test-{uuid.uuid4().hex[:8]}",
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert probe.stdout.strip() == "waited", probe.stdout + probe.stderr
