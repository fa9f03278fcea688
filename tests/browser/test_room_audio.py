"""Real audio through the server: three Chromium processes, each with a fake microphone
playing a WAV the test makes, and WebAudio analysers on what each page receives."""

from __future__ import annotations

import pytest

from tests.browser.audio_probe import hears, join, request, stays_silent_at, stops_hearing
from tests.servers import LiveServer

pytestmark = pytest.mark.browser


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
