"""What a page hears: a WebAudio analyser on the room's mix as the page receives it.

Shared by the browser tests that assert on sound (test_room_audio.py, test_media_player.py):
a tone is heard when its frequency bin reads above HEARD_DB, and gone when it stays below
SILENT_DB. Every function takes a Playwright Page or Frame (an embedded room's iframe).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from playwright.sync_api import Frame, Page, expect

HEARD_DB = -55  # a tone in the mix reads far above this; its absence far below
SILENT_DB = -65  # codec noise and loss concealment under load read up to about -73
# The last 20 ms alone (`watch`), as a tone's amplitude in dB of full scale: the file's tones
# at the player's default volume read about -17; gone, under -60.
RECENT_MS = 20
RECENT_HEARD_DB = -30
RECENT_SILENT_DB = -46

Target = Page | Frame

PROBE = """(fftSize) => {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = fftSize;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(window.liveaudio.remoteStream).connect(analyser);
  const data = new Float32Array(analyser.frequencyBinCount);
  const level = (freq) => {
    analyser.getFloatFrequencyData(data);
    const bin = Math.round(freq / (ctx.sampleRate / analyser.fftSize));
    return Math.max(...data.slice(bin - 2, bin + 3));
  };
  // A tone's amplitude (dB of full scale) in the last `ms` of samples alone: a Hann-windowed
  // Goertzel sum, so a change is seen within `ms`, not within a whole FFT window.
  const samples = new Float32Array(analyser.fftSize);
  const recent = (freq, ms) => {
    analyser.getFloatTimeDomainData(samples);
    const n = Math.min(samples.length, Math.round((ctx.sampleRate * ms) / 1000));
    const start = samples.length - n;
    const step = (2 * Math.PI * freq) / ctx.sampleRate;
    let re = 0;
    let im = 0;
    for (let i = 0; i < n; i++) {
      const x = samples[start + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
      re += x * Math.cos(step * i);
      im -= x * Math.sin(step * i);
    }
    return 20 * Math.log10((4 * Math.hypot(re, im)) / n + 1e-9);
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const heardSince = {};
  window.probe = {
    level,
    recent,
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
    // The median reading at `freq` over `ms`: a steady tone's level, codec wobble aside.
    async median(freq, ms) {
      const readings = [];
      for (const end = performance.now() + ms; performance.now() < end; await sleep(40)) {
        readings.push(level(freq));
      }
      readings.sort((a, b) => a - b);
      return readings[Math.floor(readings.length / 2)];
    },
    // From now on, the wall-clock time (Date.now(), which every page of this machine shares)
    // of the first moment the last `ms` read above (or below) `db` at `freq`, every 5 ms.
    watch(freq, db, ms, { above }) {
      window.probe.seen = new Promise((resolve) => {
        const look = () => {
          const value = recent(freq, ms);
          if (above ? value > db : value < db) resolve(Date.now());
          else setTimeout(look, 5);
        };
        look();
      });
    },
  };
}"""


def write_tone(path: Path, frequency: float | None, seconds: float = 4.0) -> Path:
    """A WAV for a fake microphone: a sine at `frequency` (None: silence)."""
    t = np.arange(int(WAV_RATE * seconds)) / WAV_RATE
    samples = np.zeros_like(t) if not frequency else 0.3 * np.sin(2 * np.pi * frequency * t)
    return write_wav(path, samples)


WAV_RATE = 48_000


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """`samples` (floats in -1..1, 48 kHz mono) as a 16-bit WAV."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def listen(target: Target, *, fft_size: int = 8192) -> None:
    """Once the page has the room's mix: the analyser on it (a smaller FFT reacts sooner)."""
    target.wait_for_function("() => window.liveaudio.mediaState === 'connected'", timeout=15_000)
    target.wait_for_function("() => window.liveaudio.remoteStream")
    target.evaluate(PROBE, fft_size)


def join(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    listen(page)


def request(target: Target, action: str, **args) -> dict:
    return target.evaluate("([a, args]) => window.liveaudio.request(a, args)", [action, args])


def hears(target: Target, frequency: int, timeout: float = 10_000) -> None:
    """`frequency` is in the page's mix, steadily (for 400 ms without a break)."""
    target.wait_for_function(
        "([f, db]) => window.probe.heardFor(f, db) > 400",
        arg=[frequency, HEARD_DB],
        timeout=timeout,
    )


def loudest(target: Target, frequency: int, ms: int = 1200) -> float:
    return target.evaluate("([f, ms]) => window.probe.loudest(f, ms)", [frequency, ms])


def median(target: Target, frequency: int, ms: int = 1200) -> float:
    return target.evaluate("([f, ms]) => window.probe.median(f, ms)", [frequency, ms])


def stays_silent_at(target: Target, frequency: int) -> None:
    level = loudest(target, frequency)
    assert level < SILENT_DB, f"{frequency} Hz still at {level:.0f} dB"


def stops_hearing(target: Target, frequency: int, timeout: float = 1_000) -> None:
    """Within `timeout` ms the tone is gone, and it stays gone."""
    target.wait_for_function(
        "([f, db]) => window.probe.level(f) < db", arg=[frequency, SILENT_DB], timeout=timeout
    )
    stays_silent_at(target, frequency)


def watch(target: Target, frequency: int, *, heard: bool) -> None:
    """Start timing the moment `frequency` is first heard (or first gone) in the last
    RECENT_MS of what the page receives; `seen_at` says when."""
    db = RECENT_HEARD_DB if heard else RECENT_SILENT_DB
    script = "([f, db, ms, above]) => window.probe.watch(f, db, ms, {above})"
    target.evaluate(script, [frequency, db, RECENT_MS, heard])


def seen_at(target: Target, timeout: float = 10_000) -> int:
    """The Date.now() of what `watch` waited for (it fails if that never comes)."""
    return target.evaluate(
        "(ms) => Promise.race([window.probe.seen, new Promise((_, no) => setTimeout("
        "() => no(new Error('not within the time')), ms))])",
        timeout,
    )
