"""One notice system (issue 13, feedback): news waits its turn. Two notices at once are both
read — the first stays its minimum before the next replaces it — and then the notice goes by
itself; `#notice` is a polite live region."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_first_minutes import host_and_guest
from tests.servers import LiveServer

pytestmark = pytest.mark.browser

RECORD = """() => {
  window.noticesSeen = [];
  const notice = document.getElementById("notice");
  new MutationObserver(() => {
    const last = window.noticesSeen.at(-1);
    if (notice.textContent && last?.text !== notice.textContent) {
      window.noticesSeen.push({ text: notice.textContent, at: performance.now() });
    }
  }).observe(notice, { childList: true, characterData: true, subtree: true });
}"""


def test_two_notices_at_once_are_both_read_in_turn(server: LiveServer, new_page) -> None:
    host, ann = host_and_guest(server, new_page, "notices", "ann")
    ann.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    ann.evaluate("() => window.liveaudio.request('microphone.turnOn', {isOn: true})")
    expect(ann.locator("#mic-toggle")).to_have_text("Mute mic")
    ann.evaluate(RECORD)

    # The host mutes Ann and moves her to the audience in one go.
    host.evaluate(
        """() => Promise.all([
          window.liveaudio.request('seat.host.mute', {targetIndex: 2}),
          window.liveaudio.request('seat.host.removeSpeaker', {userID: 'ann'}),
        ])"""
    )
    ann.wait_for_function("() => window.noticesSeen.length >= 2", timeout=20_000)
    first, second = ann.evaluate("() => window.noticesSeen")
    assert first["text"] == "A host turned your microphone off.", first
    assert second["text"] == "Hana moved you to the audience.", second
    # Timers fire late on a busy machine, never early: the first stayed at least its minimum.
    assert second["at"] - first["at"] >= 1900, (first, second)
    assert ann.locator("#notice").get_attribute("aria-live") == "polite"
    expect(ann.locator("#notice")).to_be_hidden(timeout=20_000)
