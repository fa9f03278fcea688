"""SEI in step with the audio (issue 12, part 3), timed at a listener's ear.

The speaker's fake microphone plays a WAV of short beeps. The speaker's page watches its own
microphone with a WebAudio analyser and calls `liveaudio.sendSEI({beat: n})` the moment a
beep starts; the listener's page watches the room's mix with the same analyser and notes when
each beep starts there, and when each SEI is emitted (`liveaudio:event`, `audioVideo.sei`).
Both use the same detector, so what it costs cancels out: the gap between an SEI and its beep
at the listener is what the server and the page add. The raw `sei` frames' arrival is noted
too: that is when an SEI sent over the socket at once would show, while the audio lags.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page

from tests.browser.audio_probe import WAV_RATE, join, request, write_tone, write_wav
from tests.browser.conftest import launch_with_mic
from tests.servers import LiveServer

pytestmark = pytest.mark.browser

BEEP_HZ = 440.0
PERIOD_S = 0.6  # a beep every 0.6 s...
BEEP_S = 0.15  # ...of 150 ms
BEATS = 18

# One detector for both pages: a beep starts when the last few milliseconds of samples rise
# above a threshold after 250 ms below it. Polled every 2 ms (browsers make it ~4 ms).
DETECTOR = """([source, onOnset]) => {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 256;
  ctx.createMediaStreamSource(source).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let quietSince = performance.now();
  let sounding = false;
  setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const x of samples) peak = Math.max(peak, Math.abs(x));
    const now = performance.now();
    if (peak > 0.05) {
      if (!sounding && now - quietSince > 250) onOnset(now);
      sounding = true;
    } else {
      if (sounding) quietSince = now;
      sounding = false;
    }
  }, 2);
}"""

SPEAKER = (
    "(detector) => {"
    " const track = window.liveaudio.pc.getSenders().find((s) => s.track).track;"
    " window.sentBeats = 0;"
    " eval(detector)([new MediaStream([track]), () => {"
    "   window.liveaudio.sendSEI({beat: ++window.sentBeats}); }]);"
    "}"
)

LISTENER = (
    "(detector) => {"
    " window.onsets = []; window.seis = []; window.arrivals = [];"
    " document.addEventListener('liveaudio:event', (e) => {"
    "   if (e.detail.type === 'audioVideo.sei')"
    "     window.seis.push({beat: e.detail.sei.beat, at: performance.now()}); });"
    " document.body.addEventListener('htmx:wsBeforeMessage', (e) => {"
    '   if (e.detail.message.startsWith(\'{"type": "sei"\'))'
    "     window.arrivals.push(performance.now()); });"
    " eval(detector)([window.liveaudio.remoteStream, (t) => window.onsets.push(t)]);"
    "}"
)


def write_beeps(path: Path) -> Path:
    """Ten beeps in a 6 s WAV (the fake microphone loops it), each with a 2 ms ramp."""
    t = np.arange(int(WAV_RATE * PERIOD_S * 10)) / WAV_RATE
    phase = (t - PERIOD_S / 2) % PERIOD_S
    gate = np.clip(np.minimum(phase, BEEP_S - phase) / 0.002, 0, 1) * (phase < BEEP_S)
    return write_wav(path, 0.5 * gate * np.sin(2 * np.pi * BEEP_HZ * t))


def gaps(onsets: list[float], marks: list[float]) -> list[float]:
    """For each mark (ms), its distance to the nearest beep onset (ms; positive: after it)."""
    return [mark - min(onsets, key=lambda onset: abs(mark - onset)) for mark in marks]


def test_an_sei_is_emitted_when_the_listener_hears_the_audio_it_was_sent_with(
    server: LiveServer, playwright, tmp_path: Path
) -> None:
    server.create_room("sei-room")
    speaker_browser = launch_with_mic(playwright, write_beeps(tmp_path / "beeps.wav"))
    listener_browser = launch_with_mic(playwright, write_tone(tmp_path / "silence.wav", None))
    try:
        speaker: Page = speaker_browser.new_page()
        listener: Page = listener_browser.new_page()
        join(speaker, server.embed_url("sei-room", "alice"))
        join(listener, server.embed_url("sei-room", "bob"))
        request(speaker, "seat.take", index=1)
        request(speaker, "microphone.turnOn", isOn=True)
        speaker.wait_for_function(
            "() => window.liveaudio.pc.getSenders().some((s) => s.track?.readyState === 'live')"
        )
        listener.evaluate(LISTENER, DETECTOR)
        speaker.evaluate(SPEAKER, DETECTOR)
        listener.wait_for_function(
            f"() => window.seis.length >= {BEATS}", timeout=PERIOD_S * BEATS * 1000 + 30_000
        )
        # ...and the beep of the last one, wherever it falls.
        listener.wait_for_function("() => window.onsets.at(-1) > window.seis.at(-1).at - 100")
        onsets = listener.evaluate("window.onsets")
        seis = listener.evaluate("window.seis")
        arrivals = listener.evaluate("window.arrivals")
    finally:
        speaker_browser.close()
        listener_browser.close()

    # The first beats go before the first RTCP sender report (the SEI then goes with the
    # newest audio received) and while the mix settles: judged from the third on.
    print(f"the first two: {[round(g, 1) for g in gaps(onsets, [s['at'] for s in seis[:2]])]}")
    held = gaps(onsets, [s["at"] for s in seis[2:]])
    at_once = gaps(onsets, arrivals[2 : len(seis)])
    print(f"SEI - beep onset at the listener, ms: {sorted(round(g, 1) for g in held)}")
    print(f"a 'sei' frame's arrival - beep onset, ms: {sorted(round(g, 1) for g in at_once)}")
    within = sum(abs(g) <= 40 for g in held) / len(held)
    print(f"within ±40 ms: {within:.0%}; median {statistics.median(held):.1f} ms")
    assert [s["beat"] for s in seis] == sorted(s["beat"] for s in seis)
    # Looser than the ±40 ms for 95 % the product aims at (docs/performance.md reports the
    # distribution), for a loaded machine; but tight enough that emitting the frame on
    # arrival, ahead of the audio, fails.
    assert abs(statistics.median(held)) <= 40, held
    assert within >= 0.75, held
    assert statistics.median(at_once) < statistics.median(held) - 20, (held, at_once)
