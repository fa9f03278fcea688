"""The minimized room leaves no empty box behind in the integrator's page (issue 13, point 5:
its 640 px container stayed, empty, above the bar)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_embed import host_and_audience, read
from tests.browser.test_embed import sign as sign  # fixtures, by their names
from tests.browser.test_embed import sites as sites

pytestmark = pytest.mark.browser


def test_minimizing_collapses_the_rooms_box_and_restoring_brings_it_back(
    server, sites, sign, new_page
) -> None:
    host, _ = host_and_audience(server, sites, sign, new_page, "embed-minimize")
    container = host.locator("#room")
    assert container.bounding_box()["height"] == 640
    assert read(host, "c().minimize.minimize()") is True
    expect(host.locator(".liveaudio-minimized")).to_be_visible()
    host.wait_for_function("() => document.getElementById('room').offsetHeight === 0")
    # The room plays on unseen: its frame is still there and connected.
    room_frame = next(f for f in host.frames if f.url.startswith(server.url))
    room_frame.wait_for_function("() => window.liveaudio.mediaState === 'connected'")
    assert read(host, "c().minimize.restore()") is True
    host.wait_for_function("() => document.getElementById('room').offsetHeight === 640")
    assert host.locator("#room iframe").bounding_box()["width"] > 800
