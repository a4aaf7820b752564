"""Issue 11, point 4, without a browser: the handshake's Origin against a real daphne.

Raw handshakes, so the test controls every header (Host, Origin, X-Forwarded-*) exactly as a
browser on another port, a DNS-rebound name or a TLS proxy would send them.
"""

from __future__ import annotations

import base64
import os
import socket

import pytest

from tests.security.test_secrets import start_up

pytestmark = pytest.mark.django_db(transaction=True)


def handshake(port: int, origin: str | None, host: str | None = None, **headers: str) -> int:
    """The HTTP status daphne answers to a WebSocket upgrade (101 = the socket opened)."""
    lines = ["GET /ws/ HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


OPEN = {"HUB_REQUIRE_AUTH": "false"}  # the Origin check comes first; auth is not the point here


@pytest.mark.parametrize("allowed_hosts", [None, "*"])
def test_only_the_hubs_own_origin_by_default(hub_server, allowed_hosts):
    server = hub_server({**OPEN, **({"DJANGO_ALLOWED_HOSTS": allowed_hosts} if allowed_hosts else {})})
    port = server.port
    assert handshake(port, f"http://127.0.0.1:{port}") == 101
    assert handshake(port, None) == 101  # not a browser
    for origin in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1:8888", "http://127.0.0.1",
                   f"https://127.0.0.1:{port}", f"http://localhost:{port}", "null",
                   "https://evil.example"):
        assert handshake(port, origin) == 403, origin


def test_a_dns_rebound_name_is_not_the_hubs_own_origin(hub_server):
    server = hub_server(OPEN)
    # evil.test resolves to 127.0.0.1 now: Origin and Host agree, but the host is not allowed
    host = f"evil.test:{server.port}"
    assert handshake(server.port, f"http://{host}", host=host) == 403


def test_csrf_trusted_origins_and_hub_allowed_origins(hub_server):
    server = hub_server({**OPEN, "DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.example.edu",
                         "HUB_ALLOWED_ORIGINS": "http://127.0.0.1:8888,https://portal.example.org"})
    port = server.port
    for origin in ("https://dash.example.edu", "https://example.edu", "http://127.0.0.1:8888",
                   "https://portal.example.org", "https://portal.example.org:443"):
        assert handshake(port, origin) == 101, origin
    for origin in ("http://dash.example.edu", "https://dash.example.edu:8443",
                   "https://example.edu.evil.org", "http://127.0.0.1:8889",
                   "http://portal.example.org", "https://x.portal.example.org"):
        assert handshake(port, origin) == 403, origin


def test_behind_a_tls_proxy_the_own_origin_is_https(hub_server):
    server = hub_server({**OPEN, "DJANGO_ALLOWED_HOSTS": "hub.example.edu",
                         "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"})
    port, host = server.port, "hub.example.edu"
    assert handshake(port, "https://hub.example.edu", host, X_Forwarded_Proto="https") == 101
    assert handshake(port, "http://hub.example.edu", host, X_Forwarded_Proto="https") == 403
    assert handshake(port, "https://hub.example.edu", host) == 403  # the proxy did not say https
    assert handshake(port, "http://hub.example.edu", host) == 101


def test_star_allows_every_origin_and_says_so_at_start_up(hub_server):
    server = hub_server({**OPEN, "HUB_ALLOWED_ORIGINS": "*"})
    assert handshake(server.port, "https://evil.example") == 101
    assert "HUB_ALLOWED_ORIGINS=*" in server.log_text()


@pytest.mark.parametrize("name, value", [
    ("HUB_ALLOWED_ORIGINS", ".example.edu"),  # the old host-pattern form
    ("HUB_ALLOWED_ORIGINS", "hub.example.edu"),
    ("HUB_ALLOWED_ORIGINS", "https://hub.example.edu/dashboard"),
    ("DJANGO_CSRF_TRUSTED_ORIGINS", "hub.example.edu"),
])
def test_entries_that_are_not_origins_stop_start_up(name, value):
    result = start_up({"DJANGO_SECRET_KEY": "x" * 10 + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
                       name: value})
    assert result.returncode != 0 and f"{name}: {value!r} is not an origin" in result.stderr
