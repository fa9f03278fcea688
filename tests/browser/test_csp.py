"""Issue 10, point 7: every page runs under a strict Content-Security-Policy.

Each page is loaded in Chromium with a listener for ``securitypolicyviolation`` in every frame
(and the console's CSP messages); any violation fails the test, and so does a page that sends
no policy or one whose scripts may run inline or through eval. The pages are also used, not
only loaded: the room connects its socket and carries a chat line, the embedded room is driven
from an integrator's page on another origin, admin and the API docs render.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, Page, Response, expect

from tests.browser.conftest import sign_in_admin, sign_up
from tests.servers import ROOT, LiveServer, free_port

pytestmark = pytest.mark.browser

# Runs first in every frame of every page, the cross-origin iframe included.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation({
    page: location.href, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
  });
});
"""

# A 1x1 PNG: the integrator's avatar and background images, served from its own origin.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PARENT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Integrator</title></head>
<body><div id="room" style="width: 900px; height: 640px"></div></body></html>
"""


class Watched:
    """A page whose CSP violations (from any of its frames) and CSP console lines are kept."""

    def __init__(self, page: Page, violations: list[dict | str]) -> None:
        self.page = page
        self.violations = violations
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def goto(self, url: str) -> Response:
        response = self.page.goto(url)
        assert response is not None
        return response

    def assert_clean(self) -> None:
        assert self.violations == [], self.violations


@pytest.fixture
def watched(browser: Browser) -> Iterator[Callable[[], Watched]]:
    contexts = []

    def make() -> Watched:
        context = browser.new_context()
        contexts.append(context)
        violations: list[dict | str] = []
        context.expose_function("reportViolation", lambda found: violations.append(found))
        context.add_init_script(REPORT_VIOLATIONS)
        return Watched(context.new_page(), violations)

    yield make
    for context in contexts:
        context.close()


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


def strict_policy(response: Response) -> dict[str, list[str]]:
    """The response's policy, checked for what every page must have; its directives."""
    policy = response.headers.get("content-security-policy")
    assert policy, f"{response.url} sends no Content-Security-Policy"
    found = directives(policy)
    scripts = found.get("script-src") or found.get("default-src")
    assert scripts, f"{response.url}: no script-src nor default-src in {policy}"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, policy
    assert scripts[0] == "'self'", policy
    assert found["default-src"] == ["'self'"], policy
    assert found["object-src"] == ["'none'"], policy
    assert found["base-uri"] == ["'self'"], policy
    return found


def ordinary_page(response: Response) -> dict[str, list[str]]:
    found = strict_policy(response)
    assert found["frame-ancestors"] == ["'none'"]
    return found


def scripts_carry_the_nonce(page: Page | Frame, policy: dict[str, list[str]]) -> None:
    """Every script element is external and same-origin, or carries this response's nonce."""
    nonces = {value[7:-1] for value in policy["script-src"] if value.startswith("'nonce-")}
    scripts = page.eval_on_selector_all(
        "script:not([type='application/json'])",
        "(all) => all.map((s) => ({src: s.src, nonce: s.nonce}))",
    )
    assert scripts, "the page has no scripts"
    origin = re.match(r"https?://[^/]+", page.url).group(0)
    for script in scripts:
        assert script["nonce"] in nonces or script["src"].startswith(origin + "/"), script


def wait_live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_lobby_and_account_pages_run_under_the_policy(server: LiveServer, watched) -> None:
    visitor = watched()
    for path in ("/", "/accounts/login/", "/accounts/signup/"):
        policy = ordinary_page(visitor.goto(server.url + path))
        scripts_carry_the_nonce(visitor.page, policy)
    sign_up(visitor.page, server, "carla")
    ordinary_page(visitor.goto(server.url + "/"))
    expect(visitor.page.locator(".create-room")).to_be_visible()
    visitor.assert_clean()


def test_the_room_works_under_the_policy_for_host_and_guest(server: LiveServer, watched) -> None:
    host, guest = watched(), watched()
    sign_up(host.page, server, "hedda")
    host.page.fill("#id_title", "Policy jam")
    host.page.fill("#id_room_id", "policy-jam")
    host.page.click(".create-room button[type=submit]")
    expect(host.page).to_have_url(re.compile(r"/rooms/policy-jam/$"))
    room_url = host.page.url
    policy = ordinary_page(host.goto(room_url))
    scripts_carry_the_nonce(host.page, policy)
    # The socket (same host, ws:) is allowed by connect-src 'self'.
    wait_live(host.page)
    expect(host.page.locator("#bottom-bar .role")).to_have_text("host")

    sign_up(guest.page, server, "gus")
    policy = ordinary_page(guest.goto(room_url))
    scripts_carry_the_nonce(guest.page, policy)
    wait_live(guest.page)
    # htmx's ws-send and the swaps it does with what comes back, seen on both screens.
    guest.page.fill("input[name=message]", "under the policy")
    guest.page.press("input[name=message]", "Enter")
    expect(
        host.page.locator("#chat-messages .message", has_text="under the policy")
    ).to_be_visible()
    host.page.click("#seat-1")
    expect(guest.page.locator("#seat-1 .seat-name")).to_have_text("hedda")
    host.assert_clean()
    guest.assert_clean()


class IntegratorSite:
    """An integrator's web server (its own port, so its own origin): a page and an image."""

    def __init__(self, root: Path) -> None:
        (root / "index.html").write_text(PARENT_PAGE)
        (root / "pixel.png").write_bytes(PIXEL)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        handler = partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def integrator(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    site = IntegratorSite(tmp_path_factory.mktemp("csp-integrator"))
    server.manage("setup_demo", "--base-url", server.url, "--demo-port", str(site.port))
    yield site
    site.close()


def demo_app_sign(server: LiveServer) -> str:
    return server.app_sign()


def test_the_embedded_room_runs_under_the_policy_in_another_origin(
    server: LiveServer, integrator: IntegratorSite, watched
) -> None:
    sign = demo_app_sign(server)
    parent = watched()
    embedded: list[Response] = []
    parent.page.on("response", lambda r: embedded.append(r) if "/embed/1234567/" in r.url else None)
    parent.goto(integrator.url + "/")
    parent.page.add_script_tag(url=server.url + "/static/liveaudio/embed.js")
    joined = parent.page.evaluate(
        """async ([server, sign, images]) => {
          const config = LiveAudioRoom.config.host();
          config.seat = { avatarURL: images + "/pixel.png?user={userID}" };
          config.background = { imageURL: images + "/pixel.png" };
          window.room = LiveAudioRoom.create(document.getElementById("room"), {
            server, appID: 1234567, roomID: "policy-embed", userID: "ines", userName: "Ines",
            appSign: sign, config,
          });
          await window.room.ready;
          return true;
        }""",
        [server.url, sign, integrator.url],
    )
    assert joined is True
    frame = parent.page.frame_locator("#room iframe")
    expect(frame.locator("#connection")).to_have_attribute("data-state", "live")

    # The page is framed by the app's origins only, and its images come from the config's.
    policy = strict_policy(embedded[-1])
    assert integrator.url in policy["frame-ancestors"]
    assert "'none'" not in policy["frame-ancestors"]
    assert integrator.url in policy["img-src"]
    room_frame = next(f for f in parent.page.frames if "/embed/1234567/" in f.url)
    scripts_carry_the_nonce(room_frame, policy)
    background = frame.locator("img.room-background")
    expect(background).to_be_attached()
    assert background.evaluate("(img) => img.complete && img.naturalWidth") == 1

    # The controller (postMessage through bridge.js) still drives the room.
    parent.page.evaluate("() => room.controller.seat.host.close()")
    expect(frame.locator("#seat-3")).to_have_class(re.compile(r"\blocked\b"))
    parent.assert_clean()


def test_admin_pages_run_under_the_policy(server: LiveServer, watched) -> None:
    operator = watched()
    ordinary_page(operator.goto(server.url + "/admin/login/"))
    sign_in_admin(operator.page, server)
    for path in ("/admin/", "/admin/rooms/room/", "/admin/rooms/app/", "/admin/rooms/app/add/"):
        policy = ordinary_page(operator.goto(server.url + path))
        scripts_carry_the_nonce(operator.page, policy)
    # The changelist's action bar (admin's actions.js) works: select all counts the rows.
    operator.goto(server.url + "/admin/rooms/room/")
    operator.page.check("#action-toggle")
    expect(operator.page.locator(".action-counter")).to_contain_text("selected")
    operator.assert_clean()


def test_the_api_docs_run_under_the_policy_from_this_server_alone(
    server: LiveServer, watched
) -> None:
    reader = watched()
    requested: list[str] = []
    reader.page.on("request", lambda r: requested.append(r.url))
    policy = ordinary_page(reader.goto(server.url + "/api/v1/docs"))
    scripts_carry_the_nonce(reader.page, policy)
    expect(reader.page.locator(".swagger-ui .information-container")).to_contain_text(
        "liveaudio server API"
    )
    expect(reader.page.locator(".opblock").first).to_be_visible()
    reader.page.locator(".opblock-summary").first.click()
    expect(reader.page.locator(".opblock-body").first).to_be_visible()
    assert [url for url in requested if not url.startswith(server.url + "/")] == []
    reader.assert_clean()


@pytest.fixture
def demo_site(server: LiveServer, tmp_path: Path) -> Iterator[str]:
    """demo/serve.py, the integrator the README points to, on a port of its own."""
    port = free_port()
    server.manage("setup_demo", "--base-url", server.url, "--demo-port", str(port))
    command = [sys.executable, "demo/serve.py", "--server", server.url, "--port", str(port)]
    env = {**server.env, "LIVEAUDIO_DEMO_APP_SIGN": demo_app_sign(server)}
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "demo did not start"
            time.sleep(0.1)  # polling for the port, not waiting on behaviour
    yield url
    process.terminate()
    process.wait(5)


def test_the_demo_integrator_page_keeps_a_strict_policy_with_the_sdk(
    server: LiveServer, demo_site: str, watched
) -> None:
    integrator = watched()
    policy = ordinary_page(integrator.goto(demo_site + "/"))
    assert policy["frame-src"] == [server.url] and "'unsafe-inline'" not in policy["style-src"]
    page = integrator.page
    page.fill("input[name=userName]", "Olga")
    page.fill("input[name=roomID]", "policy-demo")
    page.select_option("select[name=role]", "host")
    page.click("#join button[type=submit]")
    frame = page.frame_locator("#room-frame iframe")
    expect(frame.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#log")).to_contain_text("joined")

    # The SDK's own UI (the minimized bar) and its controller, under the page's policy.
    page.click("[data-call=minimize]")
    page.click(".liveaudio-minimized .liveaudio-restore")
    expect(page.locator(".liveaudio-minimized")).to_have_count(0)
    assert page.locator("#room-frame iframe").bounding_box()["width"] > 100  # shown again
    page.click("[data-call=lockAll]")
    expect(frame.locator("#seat-3")).to_have_class(re.compile(r"\blocked\b"))
    integrator.assert_clean()
