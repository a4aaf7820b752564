"""hub/socket/origin.py origin_allowed, own_origin and hub/ops/logging_filters.py redact (PROTOCOL.md §2).

Pure tests: plain function calls, no server, no database.
"""

from __future__ import annotations

import io
import logging

import pytest

from hub.ops.logging_filters import RedactingStream, RedactSecretsFilter, redact
from hub.socket.origin import origin_allowed, origin_entry_problem, own_origin

# --- origin_allowed: exact scheme, host and port --------------------------------------------------

EXACT = ["https://a.example:8443", "http://dash.example.org"]
WILD = ["https://*.example.com"]  # Django's CSRF_TRUSTED_ORIGINS form
OWN = "http://127.0.0.1:8000"


@pytest.mark.parametrize("origin, allowed, own, ok", [
    # "*" allows everything, even odd schemes
    ("https://anything.test", ["*"], None, True),
    ("http://localhost:1234", ["*"], None, True),
    ("null", ["*"], None, True),
    ("https://x.example", ["https://y.example", "*"], None, True),
    # exact origins, port included
    ("https://a.example:8443", EXACT, None, True),
    ("HTTPS://A.EXAMPLE:8443", EXACT, None, True),
    ("https://a.example:8443/", EXACT, None, True),
    (" https://a.example:8443 ", EXACT, None, True),
    ("https://a.example", EXACT, None, False),
    ("https://a.example:9999", EXACT, None, False),
    ("http://a.example:8443", EXACT, None, False),
    ("http://dash.example.org", EXACT, None, True),
    ("http://dash.example.org:80", EXACT, None, True),  # the default port is the same origin
    ("https://dash.example.org", EXACT, None, False),
    ("http://dash.example.org:8080", EXACT, None, False),
    ("http://evil.dash.example.org", EXACT, None, False),
    ("https://dash.example.org", ["https://dash.example.org/"], None, True),
    ("https://dash.example.org", ["HTTPS://Dash.Example.Org"], None, True),
    ("https://dash.example.org", ["https://dash.example.org:443"], None, True),
    # the hub's own origin: same scheme, host and port only
    ("http://127.0.0.1:8000", [], OWN, True),
    ("http://127.0.0.1:8001", [], OWN, False),  # a Jupyter on another port of the login node
    ("https://127.0.0.1:8000", [], OWN, False),
    ("http://localhost:8000", [], OWN, False),
    ("http://127.0.0.1:8001", ["http://127.0.0.1:8001"], OWN, True),
    ("http://127.0.0.1:8000", [], None, False),  # own origin unknown (Host not allowed)
    # wildcard subdomains, as Django's CSRF check: scheme and port still exact
    ("https://example.com", WILD, None, True),
    ("https://www.example.com", WILD, None, True),
    ("https://a.b.example.com", WILD, None, True),
    ("http://www.example.com", WILD, None, False),
    ("https://www.example.com:8443", WILD, None, False),
    ("https://example.com.evil.org", WILD, None, False),
    ("https://evilexample.com", WILD, None, False),
    ("https://www.example.com:8443", ["https://*.example.com:8443"], None, True),
    # host patterns (the old form) match nothing: only full origins count
    ("https://www.example.com", [".example.com"], None, False),
    ("https://example.com", ["example.com"], None, False),
    # non-http schemes and garbage are refused
    ("file://", ["https://a.example:8443"], None, False),
    ("file:///etc/passwd", [], "file://", False),
    ("chrome-extension://abcdef", WILD, None, False),
    ("ws://www.example.com", WILD, None, False),
    ("wss://www.example.com", WILD, None, False),
    ("ftp://www.example.com", WILD, None, False),
    ("javascript:alert(1)", [], OWN, False),
    ("null", WILD, OWN, False),
    ("", [], OWN, False),
    ("www.example.com", WILD, None, False),
    ("https://", WILD, None, False),
    ("http://user@127.0.0.1:8000", [], OWN, False),
    ("http://127.0.0.1:8000/path", [], OWN, False),
    ("http://127.0.0.1:99999", [], OWN, False),
])
def test_origin_allowed(origin, allowed, own, ok):
    assert origin_allowed(origin, allowed, own) is ok


def test_ipv6_origin_matches_its_bracketed_host():
    assert origin_allowed("http://[::1]:8000", [], "http://[::1]:8000") is True
    assert origin_allowed("http://[::1]:8000", ["http://[::1]:8000"]) is True
    assert origin_allowed("http://[::1]:8001", [], "http://[::1]:8000") is False


def test_origin_allowed_does_not_mutate_its_list():
    allowed = ["https://A.example/", "https://*.Example.com"]
    origin_allowed("https://a.example", allowed)
    assert allowed == ["https://A.example/", "https://*.Example.com"]


def _scope(host: str, scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"host", host.encode())] + [
        (name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.mark.parametrize("scope, hosts, proxy, forwarded_host, own", [
    (_scope("127.0.0.1:8000"), ["127.0.0.1"], None, False, "http://127.0.0.1:8000"),
    (_scope("hub.example.edu", "wss"), ["hub.example.edu"], None, False, "https://hub.example.edu"),
    (_scope("HUB.example.edu:443", "wss"), ["hub.example.edu"], None, False,
     "https://hub.example.edu"),
    # ALLOWED_HOSTS gates which Host is "own" (a DNS-rebound name is not), "*" lets any through
    (_scope("evil.test:8000"), ["127.0.0.1"], None, False, None),
    (_scope("evil.test:8000"), ["*"], None, False, "http://evil.test:8000"),
    (_scope(""), ["*"], None, False, None),
    # behind a TLS proxy: SECURE_PROXY_SSL_HEADER decides the scheme, like request.is_secure()
    (_scope("hub.example.edu", x_forwarded_proto="https"), ["hub.example.edu"],
     ("HTTP_X_FORWARDED_PROTO", "https"), False, "https://hub.example.edu"),
    (_scope("hub.example.edu", x_forwarded_proto="https, http"), ["hub.example.edu"],
     ("HTTP_X_FORWARDED_PROTO", "https"), False, "https://hub.example.edu"),
    (_scope("hub.example.edu", "wss", x_forwarded_proto="http"), ["hub.example.edu"],
     ("HTTP_X_FORWARDED_PROTO", "https"), False, "http://hub.example.edu"),
    (_scope("hub.example.edu", x_forwarded_proto="https"), ["hub.example.edu"], None, False,
     "http://hub.example.edu"),  # the header counts only when configured
    (_scope("internal:8000", x_forwarded_host="hub.example.edu"), ["hub.example.edu"], None, True,
     "http://hub.example.edu"),
    (_scope("internal:8000", x_forwarded_host="hub.example.edu"), ["internal"], None, False,
     "http://internal:8000"),
])
def test_own_origin(scope, hosts, proxy, forwarded_host, own):
    assert own_origin(scope, hosts, proxy, forwarded_host) == own


@pytest.mark.parametrize("entry, ok", [
    ("https://hub.example.edu", True), ("http://127.0.0.1:8000", True),
    ("https://*.example.edu", True), ("https://*.example.edu:8443", True),
    (".example.edu", False), ("hub.example.edu", False), ("https://hub.example.edu/path", False),
    ("https://*", False), ("https://a.*.edu", False), ("ws://hub.example.edu", False), ("*", False),
])
def test_origin_entry_problem(entry, ok):
    assert (origin_entry_problem(entry) is None) is ok


# --- redact -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("GET /ws/?token=abc123 HTTP/1.1", "GET /ws/?token=[redacted] HTTP/1.1"),
    ("GET /ws/?token=abc123&x=1", "GET /ws/?token=[redacted]&x=1"),
    ("GET /ws/?x=1&token=eyJhbGciOi.eyJzdWIi.sig_-x", "GET /ws/?x=1&token=[redacted]"),
    ("/api?access=eyJ.a.b;next=1", "/api?access=[redacted];next=1"),
    ("access=zzz refresh=yyy", "access=[redacted] refresh=[redacted]"),
    ("TOKEN=ABC", "TOKEN=[redacted]"),
    ("password=hunter2 user=alice", "password=[redacted] user=alice"),
    ("Cookie: sessionid=s3cr3t; csrftoken=c5rf; theme=dark",
     "Cookie: sessionid=[redacted]; csrftoken=[redacted]; theme=dark"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_+/=",
     "Authorization: Bearer [redacted]"),
    ("authorization: bearer abc.def", "authorization: bearer [redacted]"),
    ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
     "Authorization: Token [redacted]"),
    ("auth failed for Bearer abc, closing 4001", "auth failed for Bearer [redacted], closing 4001"),
    ("two: ?token=a and ?token=b", "two: ?token=[redacted] and ?token=[redacted]"),
    ("'token=abc' \"token=def\"", "'token=[redacted]' \"token=[redacted]\""),
    ("GET /ws/?tok%65n=abc&x=1", "GET /ws/?tok%65n=[redacted]&x=1"),
    ("GET /?a=1&Access_Token=abc&jwt=def", "GET /?a=1&Access_Token=[redacted]&jwt=[redacted]"),
    ("GET /?tokens=3&mytoken=5", "GET /?tokens=3&mytoken=5"),
])
def test_redact_removes_secret_values(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("secret, text", [
    ("abc123", "GET /ws/?token=abc123 HTTP/1.1"),
    ("eyJhbGciOi.eyJzdWIi.sig", "Bearer eyJhbGciOi.eyJzdWIi.sig"),
    ("9944b09199c62bcf", "Token 9944b09199c62bcf"),
    ("s3cr3t", "sessionid=s3cr3t"),
])
def test_secret_never_survives(secret, text):
    assert secret not in redact(text)


@pytest.mark.parametrize("text", [
    "",
    "client c_3f9a connected as alice on hub-1",
    "subscribe jobs nodes user:alice",
    "GET /api/health HTTP/1.1 200",
    "tokens issued: 3",
    "closing socket with 4001",
    "mytoken = 5",
    "héllo ✓ 日本",
])
def test_redact_keeps_text_without_secrets(text):
    assert redact(text) == text


def test_redact_keeps_everything_around_the_secret():
    text = "10.0.0.1 - alice [22/Nov/2026] \"GET /ws/?a=1&token=SECRET&b=2 HTTP/1.1\" 101 0"
    assert redact(text) == (
        "10.0.0.1 - alice [22/Nov/2026] \"GET /ws/?a=1&token=[redacted]&b=2 HTTP/1.1\" 101 0")


def test_logging_filter_redacts_formatted_message():
    record = logging.LogRecord("hub", logging.INFO, __file__, 1, "connect with %s from %s",
                               ("?token=SECRET", "10.0.0.1"), None)
    assert RedactSecretsFilter().filter(record) is True
    assert record.getMessage() == "connect with ?token=[redacted] from 10.0.0.1"
    assert "SECRET" not in record.getMessage()


def test_logging_filter_leaves_clean_records_alone():
    record = logging.LogRecord("hub", logging.INFO, __file__, 1, "hello %s", ("alice",), None)
    assert RedactSecretsFilter().filter(record) is True
    assert (record.msg, record.args) == ("hello %s", ("alice",))


def test_redacting_stream():
    buffer = io.StringIO()
    stream = RedactingStream(buffer)
    stream.write("GET /ws/?token=SECRET 101\n")
    stream.flush()
    assert buffer.getvalue() == "GET /ws/?token=[redacted] 101\n"
