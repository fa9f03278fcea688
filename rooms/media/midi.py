"""MIDI files made audible: rendered once by FluidSynth, then played like any other file.

A MIDI file holds notes, not sound; a synthesizer with a soundfont turns it into audio. The
FluidSynth command line with Debian's General MIDI soundfont (`fluidsynth`,
`fluid-soundfont-gm`, installed by `scripts/setup`) renders it faster than real time to a
file PyAV reads, so the player and the probe never need to know it was MIDI.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 48000
# FluidSynth's default (0.2) renders a single piano at about -27 dBFS; 0.5 is near speech
# level and still leaves headroom for chords.
GAIN = 0.5
RENDER_TIMEOUT = 300.0  # a long file renders at ~100x real time: 4 h in about 2.5 min
OUTPUT_TYPES = {".wav": "wav", ".flac": "flac"}


class MidiError(Exception):
    """The MIDI file could not be rendered; the message is a plain sentence for the user."""


def render_midi(src: Path, dst: Path, *, timeout: float = RENDER_TIMEOUT) -> None:
    """Render the Standard MIDI File `src` to `dst` (.wav or .flac, 48 kHz); `MidiError`."""
    file_type = OUTPUT_TYPES.get(Path(dst).suffix.lower())
    if file_type is None:
        raise ValueError(f"render_midi writes .wav or .flac, not {Path(dst).suffix!r}")
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None or not SOUNDFONT.is_file():
        raise MidiError("MIDI files cannot be played here: FluidSynth is not installed.")
    with open(src, "rb") as file:
        if file.read(4) != b"MThd":
            raise MidiError("The file is not a Standard MIDI File.")
    command = [
        fluidsynth,
        "-n",  # no MIDI input driver
        "-i",  # no interactive shell
        "-q",
        "-F",
        str(Path(dst).resolve()),
        "-T",
        file_type,
        "-O",
        "s16",
        "-r",
        str(SAMPLE_RATE),
        "-g",
        str(GAIN),
        str(SOUNDFONT),
        str(Path(src).resolve()),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired:
        Path(dst).unlink(missing_ok=True)
        raise MidiError(f"The MIDI file took longer than {timeout:.0f} s to render.") from None
    # A damaged track is an "error:" line on stderr with exit status 0 and a file of silence.
    failed = result.returncode != 0 or b"error:" in result.stderr
    if failed or not Path(dst).is_file() or Path(dst).stat().st_size == 0:
        Path(dst).unlink(missing_ok=True)
        raise MidiError("The MIDI file could not be rendered; it may be damaged.")
