"""Issue 11, point 4: cross-site WebSocket hijacking from another port of the same host.

A real Chromium. The victim signs in to the hub on 127.0.0.1:A; the session cookie belongs
to host 127.0.0.1 (cookies ignore ports) and is SameSite=Lax, so a page on 127.0.0.1:B (a
user's Jupyter, code-server) is "same-site" and the browser sends the cookie with its
WebSocket handshake. Only the hub's Origin check stands between that page and the victim's
``user:`` channel. The same script from the hub's own origin is the control.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.conftest import free_port
from tests.dashboard.conftest import browser, login, orm, pages  # noqa: F401  fixtures

pytestmark = pytest.mark.django_db(transaction=True)

# Opens a socket to the hub, subscribes to the victim's channel, records everything.
HIJACK = """async (url) => {
  const seen = { opened: false, frames: [], close: null };
  await new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => {
      seen.opened = true;
      ws.send(JSON.stringify({ type: "subscribe", channel: "user:victim" }));
    };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      seen.frames.push(frame);
      if (frame.type === "subscribed" || frame.type === "error") ws.close();
    };
    ws.onclose = (event) => { seen.close = event.code; resolve(); };
  });
  return seen;
}"""

ATTACKER_PAGE = b"<!doctype html><title>notebook</title><p>nothing to see here</p>"


class _AttackerHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(ATTACKER_PAGE)))
        self.end_headers()
        self.wfile.write(ATTACKER_PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def attacker_site():
    """A web page on another port of 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _AttackerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("allowed_hosts", [None, "*"])
def test_a_page_on_another_port_cannot_open_the_victims_socket(
        hub_server, make_user, pages, attacker_site, allowed_hosts):  # noqa: F811
    env = {"DJANGO_ALLOWED_HOSTS": allowed_hosts} if allowed_hosts else {}
    server = hub_server(env)
    orm(make_user, "victim")
    page = pages.open()
    login(page, server.url, "victim")  # the session cookie is now in this browser
    target = f"{server.ws_url}/ws/"

    # control: from the hub's own page the script opens an authenticated socket
    own = page.evaluate(HIJACK, target)
    assert own["opened"] is True
    assert own["frames"][0]["type"] == "connected" and own["frames"][0]["user"] == "victim"
    assert {"type": "subscribed", "channel": "user:victim"}.items() <= own["frames"][-1].items()

    # the attack: the same script, same browser, same cookie, from 127.0.0.1:<other port>
    page.goto(attacker_site + "/")
    assert page.evaluate("document.cookie") == ""  # the page cannot read the hub's cookie...
    stolen = page.evaluate(HIJACK, target)  # ...but the browser would send it with a handshake
    assert stolen == {"opened": False, "frames": [], "close": 1006}
    assert server.log_text().count('"WSREJECT /ws/"') == 1  # the hub refused it (403), once
