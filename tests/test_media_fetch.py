"""``media.play`` of an https:// URL: fetched only from the app's hosts, never from a private
address, within size and time limits, probed like an upload. A real HTTPS server on loopback
stands for the media host; the test-only setting LIVEAUDIO_MEDIA_FETCH_ALLOW_LOOPBACK lets the
fetch reach it in the tests that need a successful download, and nowhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from rooms.errors import ServiceError
from rooms.models import MediaFile, Playback
from rooms.services import media_play
from rooms.services.mediafiles import media_source
from tests.https_media_server import media_site
from tests.media_files import make_tone_file
from tests.media_uploads import stored_media

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_dirs")]


@pytest.fixture
def site(media_dirs: Path, settings):
    settings.LIVEAUDIO_MEDIA_FETCH_READ_SECONDS = 1.0
    with media_site(media_dirs) as (site, cert):
        settings.LIVEAUDIO_MEDIA_FETCH_CA_FILE = str(cert)
        song = make_tone_file(media_dirs / "song.mp3").read_bytes()
        site.routes = {
            "/song.mp3": (200, {"Content-Type": "audio/mpeg"}, song),
            "/list.mp3": (200, {}, b"not a song\n" * 100),
            "/moved.mp3": (302, {"Location": "/song.mp3"}, b""),
            "/inside.mp3": (302, {"Location": "https://169.254.169.254/latest.mp3"}, b""),
            "/plain.mp3": (302, {"Location": f"http://localhost:{site.port}/song.mp3"}, b""),
        }
        site.hold = {"/slow.mp3"}
        yield site


@pytest.fixture
def allow(room, site):
    def allow(*hosts: str, loopback: bool = True) -> None:
        room.app.remote_media_hosts = "\n".join(hosts)
        room.app.save()
        from django.conf import settings

        settings.LIVEAUDIO_MEDIA_FETCH_ALLOW_LOOPBACK = loopback

    return allow


def refused(room, url: str) -> str:
    with pytest.raises(ServiceError) as caught:
        media_source(room=room, actor=None, source=url)
    assert caught.value.message
    assert not MediaFile.objects.exists()
    return caught.value.code


def test_a_url_on_the_apps_list_is_fetched_probed_and_kept(room, site, allow) -> None:
    allow(f"localhost:{site.port}")
    media = media_source(room=room, actor=None, source=site.url("/moved.mp3"))
    assert (media.name, media.extension, media.kind) == ("song.mp3", "mp3", "pureAudio")
    assert media.source_url == site.url("/moved.mp3") and abs(media.duration_ms - 10000) < 100
    media_play(room=room, actor=None, media=media)
    assert Playback.objects.get(room=room).state == "playing"


def test_loopback_is_refused_without_the_test_setting(room, site, allow) -> None:
    allow(f"localhost:{site.port}", loopback=False)
    assert refused(room, site.url("/song.mp3")) == "media_address_refused"
    assert site.requests == []  # refused before any connection


def test_a_host_not_on_the_list_is_refused(room, site, allow) -> None:
    allow("media.example.com")
    assert refused(room, site.url("/song.mp3")) == "media_host_not_allowed"
    assert site.requests == []


def test_an_app_without_a_list_plays_no_urls(room, site, allow) -> None:
    allow()
    assert refused(room, site.url("/song.mp3")) == "media_remote_not_allowed"


@pytest.mark.parametrize(
    "url", ["http://localhost/song.mp3", "ftp://localhost/song.mp3", "https://u:p@localhost/a.mp3"]
)
def test_only_plain_https_urls(room, site, allow, url) -> None:
    allow("localhost")
    assert refused(room, url) == "media_bad_url"


def test_a_redirect_to_a_private_address_is_refused(room, site, allow) -> None:
    allow(f"localhost:{site.port}", "169.254.169.254")
    assert refused(room, site.url("/inside.mp3")) == "media_address_refused"


def test_a_redirect_to_plain_http_is_refused(room, site, allow) -> None:
    allow(f"localhost:{site.port}")
    assert refused(room, site.url("/plain.mp3")) == "media_bad_url"


def test_a_slow_server_times_out(room, site, allow) -> None:
    allow(f"localhost:{site.port}")
    assert refused(room, site.url("/slow.mp3")) == "media_fetch_timeout"


def test_an_unreachable_server_is_a_clear_error(room, site, allow) -> None:
    allow("localhost:9")  # the discard port: nothing listens there
    assert refused(room, "https://localhost:9/song.mp3") == "media_fetch_failed"


def test_a_url_that_is_not_media_is_refused(room, site, allow) -> None:
    allow(f"localhost:{site.port}")
    assert refused(room, site.url("/list.mp3")) == "media_unreadable"


def test_a_download_over_the_size_limit_is_refused(room, site, allow, settings) -> None:
    allow(f"localhost:{site.port}")
    settings.LIVEAUDIO_MEDIA_MAX_BYTES = 1000
    assert refused(room, site.url("/song.mp3")) == "media_too_large"


def test_a_refused_url_leaves_the_playback_playing(room, site, allow, media_dirs) -> None:
    media = stored_media(room, make_tone_file(media_dirs / "local.wav"))
    media_play(room=room, actor=None, media=media)
    key = Playback.objects.get(room=room).key
    allow(f"localhost:{site.port}")
    with pytest.raises(ServiceError):
        media_source(room=room, actor=None, source=site.url("/list.mp3"))
    playback = Playback.objects.get(room=room)
    assert (playback.state, playback.media_id, playback.key) == ("playing", media.pk, key)
    assert list((media_dirs / "uploads").iterdir()) == []
