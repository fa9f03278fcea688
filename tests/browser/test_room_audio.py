"""Real audio through the server: three Chromium processes, each with a fake microphone
playing a WAV the test makes, and WebAudio analysers on what each page receives."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.servers import LiveServer

pytestmark = pytest.mark.browser

HEARD_DB = -55  # a tone in the mix reads far above this; its absence far below
SILENT_DB = -65  # codec noise and loss concealment under load read up to about -73

PROBE = """() => {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(window.liveaudio.remoteStream).connect(analyser);
  const data = new Float32Array(analyser.frequencyBinCount);
  const level = (freq) => {
    analyser.getFloatFrequencyData(data);
    const bin = Math.round(freq / (ctx.sampleRate / analyser.fftSize));
    return Math.max(...data.slice(bin - 2, bin + 3));
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const heardSince = {};
  window.probe = {
    level,
    // How long `freq` has been heard without a break (ms). A tone's onset splatters
    // across the spectrum for one FFT window, so silence elsewhere is judged once it is steady.
    heardFor(freq, db) {
      if (level(freq) <= db) { delete heardSince[freq]; return 0; }
      heardSince[freq] ??= performance.now();
      return performance.now() - heardSince[freq];
    },
    // The loudest reading at `freq` over `ms`: a tone that is gone stays quiet throughout.
    async loudest(freq, ms) {
      let loudest = -Infinity;
      for (const end = performance.now() + ms; performance.now() < end; await sleep(40)) {
        loudest = Math.max(loudest, level(freq));
      }
      return loudest;
    },
  };
}"""


def write_tone(path: Path, frequency: float | None, seconds: float = 4.0) -> Path:
    rate = 48_000
    t = np.arange(int(rate * seconds)) / rate
    samples = np.zeros_like(t) if not frequency else 0.3 * np.sin(2 * np.pi * frequency * t)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def browser_with_mic(playwright: Playwright, tmp_path: Path) -> Iterator:
    """A Chromium process whose fake microphone plays a tone (None: silence)."""
    browsers: list[Browser] = []

    def launch(frequency: float | None) -> Page:
        wav = write_tone(tmp_path / f"tone-{frequency}.wav", frequency)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                "--autoplay-policy=no-user-gesture-required",
                f"--use-file-for-fake-audio-capture={wav}",
            ],
        )
        browsers.append(browser)
        return browser.new_page()

    yield launch
    for browser in browsers:
        browser.close()


def join(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.wait_for_function("() => window.liveaudio.mediaState === 'connected'", timeout=15_000)
    page.wait_for_function("() => window.liveaudio.remoteStream")
    page.evaluate(PROBE)


def request(page: Page, action: str, **args) -> dict:
    return page.evaluate("([a, args]) => window.liveaudio.request(a, args)", [action, args])


def hears(page: Page, frequency: int, timeout: float = 10_000) -> None:
    """`frequency` is in the page's mix, steadily (for 400 ms without a break)."""
    page.wait_for_function(
        "([f, db]) => window.probe.heardFor(f, db) > 400",
        arg=[frequency, HEARD_DB],
        timeout=timeout,
    )


def loudest(page: Page, frequency: int, ms: int = 1200) -> float:
    return page.evaluate("([f, ms]) => window.probe.loudest(f, ms)", [frequency, ms])


def stays_silent_at(page: Page, frequency: int) -> None:
    level = loudest(page, frequency)
    assert level < SILENT_DB, f"{frequency} Hz still at {level:.0f} dB"


def stops_hearing(page: Page, frequency: int, timeout: float = 1_000) -> None:
    """Within `timeout` ms the tone is gone, and it stays gone."""
    page.wait_for_function(
        "([f, db]) => window.probe.level(f) < db", arg=[frequency, SILENT_DB], timeout=timeout
    )
    stays_silent_at(page, frequency)


def test_speakers_are_mixed_for_everyone_but_themselves(server: LiveServer, browser_with_mic):
    server.create_room("audio-room")
    a, b, c = browser_with_mic(440), browser_with_mic(None), browser_with_mic(660)
    join(a, server.embed_url("audio-room", "alice"))
    join(b, server.embed_url("audio-room", "bob", role="host"))  # the host, listening
    join(c, server.embed_url("audio-room", "carol"))
    for page, seat in ((a, 1), (c, 2)):
        request(page, "seat.take", index=seat)
        request(page, "microphone.turnOn", isOn=True)

    # B hears both; each speaker hears the other and never themself.
    hears(b, 440)
    hears(b, 660)
    hears(a, 660)
    stays_silent_at(a, 440)
    hears(c, 440)
    stays_silent_at(c, 660)

    # The host mutes A: within a second B no longer hears 440, even though A's page is
    # tampered with to keep sending (the server decides who is mixed, not the browser).
    request(b, "seat.host.mute", targetIndex=1, muted=True)
    a.wait_for_function(
        "() => !window.liveaudio.state.members.find(m => m.user_id === 'alice').mic_on"
    )
    a.evaluate("() => { window.liveaudio.pc.getTransceivers()[0].sender.track.enabled = true; }")
    stops_hearing(b, 440)
    hears(b, 660)

    # B mutes seat C for itself only: B stops hearing 660, A still hears it.
    request(b, "seat.muteLocally", targetIndex=2, muted=True)
    stops_hearing(b, 660)
    hears(a, 660)

    # A turns the mic back on (heard again), then leaves the seat: B stops hearing 440.
    request(a, "microphone.turnOn", isOn=True)
    hears(b, 440)
    request(a, "seat.leave")
    stops_hearing(b, 440)


# The first microphone open is slow; by the time it returns the state that turned the mic
# on has arrived, and a second sync has started.
SLOW_FIRST_MICROPHONE = """() => {
  const devices = navigator.mediaDevices;
  const open = devices.getUserMedia.bind(devices);
  let calls = 0;
  window.micStreams = [];
  window.micOpening = 0;
  devices.getUserMedia = async (constraints) => {
    const first = calls++ === 0;
    window.micOpening++;
    const stream = await open(constraints);
    window.micStreams.push(stream);
    if (first) await new Promise((resolve) => setTimeout(resolve, 1500));
    window.micOpening--;
    return stream;
  };
}"""


def test_a_mic_turned_on_while_it_opens_is_heard(server: LiveServer, browser_with_mic):
    """Taking a seat opens the microphone; turning it on right away (the update arrives
    while the device is still opening) must leave one live, enabled track on the sender."""
    server.create_room("slow-mic-room")
    a, b = browser_with_mic(440), browser_with_mic(None)
    a.add_init_script(f"({SLOW_FIRST_MICROPHONE})()")
    join(a, server.embed_url("slow-mic-room", "alice"))
    join(b, server.embed_url("slow-mic-room", "bob", role="host"))
    request(a, "seat.take", index=1)
    request(a, "microphone.turnOn", isOn=True)

    a.wait_for_function("() => window.micStreams.length > 0 && window.micOpening === 0")
    hears(b, 440)
    sending = a.evaluate(
        """() => {
          const track = window.liveaudio.pc.getTransceivers()[0].sender.track;
          const live = window.micStreams.flatMap((s) => s.getTracks())
            .filter((t) => t.readyState === 'live');
          return {enabled: track?.enabled, opened: window.micStreams.length,
                  live: live.length, sent: live[0] === track};
        }"""
    )
    assert sending == {"enabled": True, "opened": 1, "live": 1, "sent": True}
