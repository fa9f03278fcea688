"""Issue 9, point 6 in the browser: the SDK built from its modules (static/liveaudio/sdk/).

The controller has a member for every call of the shared table (sdk/calls.js) and the bridge
answers each one; the minimize calls act at once and can also be awaited or chained with
``.then``; the modules load as they are, unbundled, too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.test_embed import (
    PARENT_PAGE,
    StaticSite,
    call,
    join,
    mint,
    ok,
    open_parent,
    seen,
    until,
)
from tests.servers import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    """An integrator's site on its own origin, which the demo app allows."""
    root = tmp_path_factory.mktemp("integrator")
    (root / "index.html").write_text(PARENT_PAGE)
    allowed = StaticSite(root)
    server.manage("setup_demo", "--base-url", server.url, "--demo-port", str(allowed.port))
    yield allowed
    allowed.close()


@pytest.fixture(scope="module")
def app_sign(server: LiveServer) -> str:
    return server.app_sign()


def test_minimize_calls_answer_at_once_and_work_with_then(server, site, app_sign, new_page) -> None:
    page = new_page()
    open_parent(page, site.url, server)
    assert join(page, server, "sdk-minimize", "mia", "host", appSign=app_sign) == {"ok": True}

    # The result is there when the call returns, and so is the bar: nothing to wait for.
    at_once = page.evaluate(
        """() => {
          const result = c().minimize.minimize();
          return [result.value, c().minimize.state,
                  Boolean(document.querySelector('.liveaudio-minimized')),
                  typeof result.then, result instanceof Promise];
        }"""
    )
    assert at_once == [True, "minimizing", True, "function", True]
    # Already minimized: false, at once and through .then.
    again = page.evaluate(
        """() => new Promise((resolve) => {
          const result = c().minimize.minimize();
          result.then((value) => resolve([result.value, value]));
        })"""
    )
    assert again == [False, False]
    restored = page.evaluate(
        "() => c().minimize.restore().then((value) => [value, c().minimize.state])"
    )
    assert restored == [True, "inAudioRoom"]
    assert page.evaluate("async () => await c().minimize.restore()") is False
    hidden = page.evaluate(
        "() => c().minimize.hide().then((value) => [value ?? null, c().minimize.state])"
    )
    assert hidden == [None, "idle"]
    assert [args[0] for args in seen(page, "minimize.onStateChanged", 4)] == [
        "inAudioRoom",
        "minimizing",
        "inAudioRoom",
        "idle",
    ]


def test_every_call_of_the_shared_table_is_a_member_the_bridge_answers(
    server, site, app_sign, new_page
) -> None:
    page = new_page()
    open_parent(page, site.url, server)
    room = "sdk-calls"
    assert join(page, server, room, "noa", "host", appSign=app_sign) == {"ok": True}
    table = page.evaluate(
        """async (url) => {
          const { CALLS, STREAMS } = await import(url);
          const at = (path) => path.split('.').reduce((node, key) => node?.[key], c());
          return {
            calls: Object.keys(CALLS).filter((m) => typeof at(m) !== 'function'),
            streams: Object.keys(STREAMS).filter((m) => typeof at(m) !== 'function'),
            unavailable: Object.keys(CALLS).filter((m) => CALLS[m] === 'not_available'),
          };
        }""",
        server.url + "/static/liveaudio/sdk/calls.js",
    )
    assert table["calls"] == [] and table["streams"] == []
    # What the table says is not available, the bridge refuses as such, every one of them.
    for member in table["unavailable"]:
        refused = call(page, f"c().{member}()")
        assert (refused["ok"], refused["code"]) == (False, "not_available"), member
    # A plain entry ({"action", "options"}) goes through the bridge's one generic path.
    assert ok(page, "c().seat.host.close({targetIndex: 2})") is True
    until(page, "c().roomState.rows.flat().find((s) => s.index === 2).locked")
    assert ok(page, "c().audioVideo.microphone.switchState()") is True
    # A controller member the table does not list is unknown to the bridge.
    unknown = page.evaluate(
        """() => new Promise((resolve) => {
          const frame = document.querySelector('#room iframe');
          addEventListener('message', (e) => { if (e.data.id === 'x1') resolve(e.data.error); });
          frame.contentWindow.postMessage({liveaudio: 1, id: 'x1', method: 'seat.host.steal',
                                           args: []}, new URL(frame.src).origin);
        })"""
    )
    assert unknown["code"] == "unknown_method"


def test_the_modules_load_unbundled_as_es_modules(server, site, app_sign, new_page) -> None:
    page = new_page()
    page.goto(site.url + "/")
    exported = page.evaluate(
        """async (url) => {
          const { LiveAudioRoom } = await import(url);
          window.LiveAudioRoomFromModules = LiveAudioRoom;
          return [typeof LiveAudioRoom.create, LiveAudioRoom.config.audience().role,
                  typeof window.LiveAudioRoom];
        }""",
        server.url + "/static/liveaudio/sdk/index.js",
    )
    assert exported == ["function", "audience", "undefined"]
    joined = page.evaluate(
        """async ([o]) => {
          const room = window.LiveAudioRoomFromModules.create(document.getElementById('room'), o);
          await room.ready;
          return room.controller.seat.localIsHost;
        }""",
        [
            {
                "server": server.url,
                "appID": 1234567,
                "roomID": "sdk-unbundled",
                "userID": "uma",
                "userName": "Uma",
                "token": mint(app_sign, "sdk-unbundled", "uma", role="host"),
                "config": {"role": "host"},
            }
        ],
    )
    assert joined is True
