from __future__ import annotations

import pytest
from django.test import Client

URL = "/internal/media-stats/"


def test_media_stats_are_hidden_unless_enabled(client: Client, settings) -> None:
    settings.LIVEAUDIO_MEDIA_STATS = False
    assert client.get(URL).status_code == 404


def test_media_stats_answer_loopback_callers_with_json(client: Client, settings) -> None:
    settings.LIVEAUDIO_MEDIA_STATS = True
    report = client.get(URL).json()
    assert set(report) == {"hub", "process"}
    assert report["hub"]["counts"]["peers"] >= 0
    assert report["process"]["rss_bytes"] > 0 and report["process"]["cpu_user_s"] >= 0


@pytest.mark.parametrize("address", ["10.1.2.3", "192.0.2.7", "not-an-address"])
def test_media_stats_refuse_other_callers(client: Client, settings, address: str) -> None:
    settings.LIVEAUDIO_MEDIA_STATS = True
    assert client.get(URL, REMOTE_ADDR=address).status_code == 404


def test_media_stats_report_latency_percentiles() -> None:
    from rooms.media.report import latency_report

    report = latency_report([i / 1000 for i in range(1, 101)])
    assert report["n"] == 100 and report["p50"] == pytest.approx(51)
    assert report["p99"] == pytest.approx(100)
    assert latency_report([])["p95"] is None
