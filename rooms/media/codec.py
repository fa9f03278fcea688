"""Opus encoders and decoders as the media engine configures them (PyAV / libopus)."""

from __future__ import annotations

import fractions

import av
import numpy as np

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: one RTP packet, one mixer tick
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
MIX_BITRATE = 32000


def new_opus_encoder(bitrate: int = MIX_BITRATE) -> av.AudioCodecContext:
    """A mono 48 kHz voice encoder with in-band FEC.

    `fec` + `packet_loss` make libopus embed a low-bitrate copy of the previous
    frame (LBRR), which browsers use to recover single lost packets. PyAV silently
    ignores unknown options, so these names were checked against packet sizes.
    """
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = SAMPLE_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = bitrate
    encoder.time_base = TIME_BASE
    encoder.options = {"application": "voip", "fec": "1", "packet_loss": "10"}
    encoder.open()
    return encoder


def new_opus_decoder() -> av.AudioCodecContext:
    """A decoder that always yields mono s16 at 48 kHz, whatever the sender encoded."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "mono"
    decoder.format = "s16"
    return decoder


def pcm_frame(pcm: np.ndarray, pts: int) -> av.AudioFrame:
    """Wrap one tick of int16 mono PCM as an AudioFrame for the encoder."""
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def decode_pcm(decoder: av.AudioCodecContext, payload: bytes) -> np.ndarray | None:
    """Decode one Opus payload to int16 mono PCM; None if it is corrupt.

    An empty payload would be taken by FFmpeg as end-of-stream (and leave the
    decoder refusing all later input), so it is treated as corrupt here.
    """
    if not payload:
        return None
    try:
        frames = decoder.decode(av.Packet(payload))
    except av.FFmpegError:
        return None
    if not frames:
        return None
    chunks = [f.to_ndarray().reshape(-1) for f in frames]
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
