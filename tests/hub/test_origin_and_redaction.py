"""hub/origin.py origin_allowed and hub/logging_filters.py redact (PROTOCOL.md §2).

Pure tests: plain function calls, no server, no database.
"""

from __future__ import annotations

import io
import logging

import pytest

from hub.logging_filters import RedactingStream, RedactSecretsFilter, redact
from hub.origin import origin_allowed

# --- origin_allowed ----------------------------------------------------------------------------

EXACT = ["https://a.example:8443", "http://dash.example.org"]
PATTERNS = [".example.com", "exact.example.net"]


@pytest.mark.parametrize("origin, allowed, allowed_hosts, ok", [
    # "*" allows everything, even odd schemes
    ("https://anything.test", ["*"], [], True),
    ("http://localhost:1234", ["*"], [], True),
    ("null", ["*"], [], True),
    ("https://x.example", ["https://y.example", "*"], [], True),
    # exact origins, port included
    ("https://a.example:8443", EXACT, [], True),
    ("HTTPS://A.EXAMPLE:8443", EXACT, [], True),
    ("https://a.example:8443/", EXACT, [], True),
    (" https://a.example:8443 ", EXACT, [], True),
    ("https://a.example", EXACT, [], False),
    ("https://a.example:9999", EXACT, [], False),
    ("http://a.example:8443", EXACT, [], False),
    ("http://dash.example.org", EXACT, [], True),
    ("https://dash.example.org", EXACT, [], False),
    ("http://dash.example.org:8080", EXACT, [], False),
    ("http://evil.dash.example.org", EXACT, [], False),
    ("https://dash.example.org", ["https://dash.example.org/"], [], True),
    ("https://dash.example.org", ["HTTPS://Dash.Example.Org"], [], True),
    # host patterns: any scheme http(s), any port
    ("https://example.com", PATTERNS, [], True),
    ("https://www.example.com", PATTERNS, [], True),
    ("http://a.b.example.com:8000", PATTERNS, [], True),
    ("https://exact.example.net", PATTERNS, [], True),
    ("https://sub.exact.example.net", PATTERNS, [], False),
    ("https://example.com.evil.org", PATTERNS, [], False),
    ("https://evilexample.com", PATTERNS, [], False),
    ("https://example.org", PATTERNS, [], False),
    # an allowed list ignores ALLOWED_HOSTS
    ("https://localhost", ["https://other.example"], ["localhost"], False),
    # empty list: the origin's host must be in ALLOWED_HOSTS
    ("http://localhost:8000", [], ["localhost"], True),
    ("http://127.0.0.1:8000", [], ["localhost", "127.0.0.1"], True),
    ("https://app.example.com", [], [".example.com"], True),
    ("https://evil.test", [], ["localhost"], False),
    ("https://evil.test", [], [], False),
    ("https://anything.test", [], ["*"], True),
    # non-http schemes and garbage are refused
    ("file://", ["https://a.example:8443"], [], False),
    ("file:///etc/passwd", [], ["*"], False),
    ("chrome-extension://abcdef", [".example.com"], [], False),
    ("ws://www.example.com", PATTERNS, [], False),
    ("wss://www.example.com", PATTERNS, [], False),
    ("ftp://www.example.com", PATTERNS, [], False),
    ("javascript:alert(1)", [], ["*"], False),
    ("null", PATTERNS, [], False),
    ("null", [], ["*"], False),
    ("", [], ["*"], False),
    ("www.example.com", PATTERNS, [], False),
    ("https://", PATTERNS, ["*"], False),
])
def test_origin_allowed(origin, allowed, allowed_hosts, ok):
    assert origin_allowed(origin, allowed, allowed_hosts) is ok


@pytest.mark.parametrize("allowed, allowed_hosts", [([], ["[::1]"]), (["[::1]"], [])])
def test_ipv6_origin_matches_its_bracketed_host(allowed, allowed_hosts):
    assert origin_allowed("http://[::1]:8000", allowed, allowed_hosts) is True


def test_origin_allowed_does_not_mutate_its_lists():
    allowed, hosts = ["https://A.example/", ".Example.com"], ["localhost"]
    origin_allowed("https://a.example", allowed, hosts)
    assert allowed == ["https://A.example/", ".Example.com"] and hosts == ["localhost"]


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
