"""Benchmarks and test participants for liveaudio (not imported by the server)."""
