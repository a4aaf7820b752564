"""Issue 11 point 11: credentials in a URL never reach the log, however the query string
spells the key (percent-encoding, case, ``+``, repeats, ``[]``). Checked on a real daphne's
own output, access log included."""

from __future__ import annotations

import asyncio
import http.client

import pytest
import websockets
from asgiref.sync import sync_to_async

from hub.ops.logging_filters import redact
from tests.wsutil import connected

HTTP_TIMEOUT_SECONDS = 10  # a hang guard, not a latency assertion

SPELLINGS = [
    "tok%65n={s}", "TOKEN={s}", "Token={s}", "%74%6F%6B%65%6E={s}", "tok%2565n={s}", "token%5B%5D={s}",
    "token[]={s}", "+token+={s}", "access_token={s}", "jwt={s}", "pass%77ord={s}", "PASSWORD={s}",
    "refresh_token={s}", "api_key={s}",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_secret_key_is_redacted(spelling):
    line = f'127.0.0.1:5555 - - [03/Dec/2026:12:00:00] "GET /api/health?a=1&{spelling.format(s="S3CRET")}&b=2" 200 9'
    cleaned = redact(line)
    assert "S3CRET" not in cleaned and "[redacted]" in cleaned
    assert "a=1&" in cleaned and cleaned.endswith('&b=2" 200 9')


def test_repeated_keys_are_each_redacted():
    cleaned = redact("/ws/?token=ONE&tok%65n=TWO;TOKEN=THREE&x=keep")
    assert not {"ONE", "TWO", "THREE"} & set(cleaned.replace("=", " ").replace("&", " ").replace(";", " ").split())
    assert cleaned.endswith("&x=keep")


@pytest.mark.django_db(transaction=True)
async def test_a_real_servers_log_never_shows_the_secret(hub_server, make_user):
    server = hub_server()
    _alice, token = await sync_to_async(make_user)("alice")
    secrets = [f"SECRET{n}x" for n in range(len(SPELLINGS))]
    query = "&".join(s.format(s=secret) for s, secret in zip(SPELLINGS, secrets))

    def requests_with_secrets() -> None:
        for path in (f"/api/health?{query}", f"/api/nope?{query}"):
            # http.client sends the path byte for byte (requests would re-quote %65 as "e")
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT_SECONDS)
            conn.request("GET", path)
            assert conn.getresponse().status in (200, 404)
            conn.close()

    await asyncio.to_thread(requests_with_secrets)
    ws, _hello = await connected(f"{server.ws_url}/ws/?tok%65n={token}")  # the hub decodes the key too
    await ws.close()
    try:
        bad = await websockets.connect(f"{server.ws_url}/ws/?tok%65n=SECRETWS&token=SECRETWS2",
                                       open_timeout=HTTP_TIMEOUT_SECONDS)
        await bad.wait_closed()
    except websockets.InvalidStatus:
        pass
    server.stop()  # flush and close its output
    log = server.log_text()
    assert "/api/health?tok%65n=[redacted]" in log  # the access log was written, as sent
    for secret in [*secrets, token, "SECRETWS"]:
        assert secret not in log, secret
