"""The WebSocket consumer: thin. Parses nothing itself (``hub.socket.session`` does), carries out
effects, and lets the node write publications straight to its socket.

Why a plain ASGI application and not ``AsyncWebsocketConsumer``: that class gives every
socket its own channel-layer channel (with channels-redis pub/sub, one Redis SUBSCRIBE per
socket) and, since Channels 4.2, a thread hop (``aclose_old_connections``) before every
handler call. The hub needs neither: the node receives for the whole process, and database
work (token lookup) goes through ``database_sync_to_async`` only when it happens.

Admission (``hub.socket.admission``): a socket takes an anonymous place (capped per process and per
address) or an authenticated one (``HUB_MAX_CONNECTIONS``) before it is accepted, and
claims its client id only once admitted, so an unauthenticated socket can neither keep
users out nor squat an id. Until then it is known under a ``pending:`` id no client can
ask for. Its ``credential`` is re-checked by the housekeeping loop (``hub.socket.credentials``).
"""

from __future__ import annotations

import logging
import secrets
import time
from functools import partial
from typing import Any

from hub.socket import protocol as p
from hub.socket import session as s
from hub.socket import credentials
from hub.socket.admission import Gate, admission_for, admitted_scope, client_address
from hub.socket.auth import NO_CREDENTIAL, Credential, credential_for_token, handshake_credential
from hub.conf import get_policies, hub_settings
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.node import Node, get_node
from hub.socket.handlers import dispatch, is_registered
from hub.socket.origin import handshake_allowed
from hub.policies import ANONYMOUS
from hub.publish import ALL_CHANNEL, publish, user_channel
from hub.engine.transport import Payload, make_writer

logger = logging.getLogger("hub.consumer")


class HubConsumer:
    """One instance per socket. ``state``: authenticating -> connected -> closing."""

    # One per socket: no per-instance __dict__ (measured ~1 KB per idle socket).
    __slots__ = ("scope", "receive", "send", "client_id", "username", "state", "node", "session",
                 "writer", "connected_at", "last_seen", "auth_deadline", "last_ping", "last_pong",
                 "credential", "gate", "_requested", "_claimed", "_counted_user", "_closing")

    # Set when the socket is set up (``node`` in ``run``, ``session`` in ``_serve``), before
    # anything reads them, and left unset until then rather than None: the fan-out path
    # (``write_payload``) and the frame handlers use them with no check.
    node: Node
    session: s.Session

    def __init__(self, scope: dict, receive, send, requested: str | None = None) -> None:
        """``requested``: the client id in the socket's path (``hub.routing.HubRouter``)."""
        self.scope, self.receive, self.send = scope, receive, send
        self._requested = requested
        self.client_id = f"pending:{secrets.token_hex(8)}"  # until admitted (never a valid id)
        self.username: str | None = None
        self.state = "authenticating"
        self.writer: Any = None
        self.connected_at = p.utc_timestamp()
        self.last_seen = time.monotonic()
        self.auth_deadline = 0.0
        self.last_ping: str | None = None
        self.last_pong: str | None = None
        self.credential: Credential | None = None
        self.gate: Gate | None = None
        self._claimed = False
        self._counted_user = False
        self._closing = False

    # --- the socket's life ------------------------------------------------------------------

    async def run(self) -> None:
        """The handshake (origin, then credentials: before anything else), admission, the
        socket's life. Its scope keeps only what is read later (``admitted_scope``)."""
        if (await self.receive())["type"] != "websocket.connect":
            return
        if not handshake_allowed(self.scope):
            await self.send({"type": "websocket.close"})  # before accept: HTTP 403
            return
        credential = await handshake_credential(self.scope)
        self.scope = admitted_scope(self.scope)
        node = self.node = get_node()
        if node.control_handler is None:  # revocations from any process close sockets here
            node.control_handler = partial(credentials.on_control, node.connections)
            node.recheck = credentials.recheck
        await node.ensure_started()
        requested = self._requested
        if requested is not None and not p.is_valid_client_id(requested):
            await self.send({"type": "websocket.close"})  # 403: not a valid endpoint
            return
        if credential is None:
            return await self._refuse(p.CLOSE_AUTH_FAILED, "authentication failed")
        gate = Gate(admission_for(node), client_address(self.scope))
        if credential is not NO_CREDENTIAL:
            refused = None if gate.enter_authenticated(hub_settings.MAX_CONNECTIONS) else \
                "server at connection limit"
        else:
            credential = None
            refused = gate.enter_anonymous(hub_settings.MAX_ANONYMOUS_CONNECTIONS,
                                           hub_settings.MAX_CONNECTIONS_PER_ADDRESS)
        if refused:
            return await self._refuse(p.CLOSE_TRY_AGAIN_LATER, refused)
        self.gate = gate
        try:
            await self._serve(node, credential)
        finally:
            await self._cleanup()

    async def _serve(self, node: Node, credential: Credential | None) -> None:
        self.writer = make_writer(self.send, hub_settings.MAX_QUEUED_BYTES, self._on_overflow)
        self.writer.on_transport_pong(self._touch)
        self.session = s.Session(
            client_id=self.client_id, policies=get_policies(),
            require_auth=hub_settings.REQUIRE_AUTH,
            max_subscriptions=hub_settings.MAX_SUBSCRIPTIONS,
            rate=s.RateWindow(limit=hub_settings.RATE_LIMIT), is_registered_type=is_registered)
        await self.send({"type": "websocket.accept"})
        node.add_connection(self)
        if credential is not None:
            await self._admit(credential, None)
        elif not hub_settings.REQUIRE_AUTH:
            await self._admit(None, None)
        else:
            self.auth_deadline = time.monotonic() + hub_settings.AUTH_TIMEOUT
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "websocket.receive":
                await self._on_frame(message.get("text"), message.get("bytes"))
            elif kind == "websocket.disconnect":
                return

    async def _refuse(self, code: int, reason: str) -> None:
        writer = make_writer(self.send, hub_settings.MAX_QUEUED_BYTES, lambda: None)
        await self.send({"type": "websocket.accept"})
        writer.close(code, reason)
        while (await self.receive())["type"] != "websocket.disconnect":
            pass

    async def _admit(self, credential: Credential | None, frame_id: Any) -> bool:
        """Authenticated (or anonymous with auth off): limits, the client id, implicit
        channels, connected."""
        node, session = self.node, self.session
        principal = credential.principal if credential is not None else ANONYMOUS
        gate = self.gate
        assert gate is not None  # taken in run() before _serve
        if credential is not None and not gate.enter_authenticated(
                hub_settings.MAX_CONNECTIONS):
            self.request_close(p.CLOSE_TRY_AGAIN_LATER, "server at connection limit")
            return False
        if not self._claimed and not await self._claim_id():
            self.request_close(p.CLOSE_CLIENT_ID_IN_USE, "client id in use")
            return False
        self.credential = credential
        username = principal.username
        if username is not None:  # principal.is_authenticated
            count = await node.presence.add_user_connection(username, self.client_id)
            self._counted_user = True
            self.username = username
            if count > hub_settings.MAX_CONNECTIONS_PER_USER:
                self.request_close(p.CLOSE_TRY_AGAIN_LATER, "user at connection limit")
                return False
        # The personal channel is named by Slurm user (hub.identity), not always the username.
        implicit = {ALL_CHANNEL} | ({user_channel(principal.personal_name)} if principal.personal_name else set())
        session.set_principal(principal, implicit)
        self.state = "connected"
        # Implicit channels first: once `connected` arrives, messages to the user reach it.
        await node.subscribe_live(self, sorted(implicit))
        self.write_text(p.build_connected(
            client_id=self.client_id, user=principal.username, server=node.server_name,
            heartbeat_interval=hub_settings.HEARTBEAT_INTERVAL, frame_id=frame_id))
        return True

    async def _claim_id(self) -> bool:
        """Claim the requested id (or a fresh one), cluster-wide; re-key this socket."""
        node, pending = self.node, self.client_id
        wanted = self._requested or f"c_{secrets.token_hex(8)}"
        if not await node.presence.claim_client(wanted, None, node.server_name):
            return False
        self._claimed, self.client_id = True, wanted
        self.session.client_id = wanted
        node.rename_connection(self, pending)
        return True

    async def _cleanup(self) -> None:
        node = self.node
        if self.gate is not None:
            self.gate.release()
        if hasattr(self.writer, "stop"):
            self.writer.stop()
        node.remove_connection(self)
        try:
            if self._counted_user and self.username:
                await node.presence.remove_user_connection(self.username, self.client_id)
            if self._claimed:
                await node.presence.release_client(self.client_id, self.username)
        except Exception:
            logger.warning("presence cleanup failed for a socket (Redis down?)", exc_info=True)

    # --- frames ---------------------------------------------------------------------------------

    async def _on_frame(self, text: str | None, data: bytes | None) -> None:
        if self._closing:
            return
        self._touch()
        node = self.node
        node.stats.messages_received += 1
        if text is not None and len(text) > hub_settings.MAX_MESSAGE_SIZE // 4 and \
                len(text.encode("utf-8")) > hub_settings.MAX_MESSAGE_SIZE:
            self.request_close(p.CLOSE_TOO_LARGE, "frame too large")
            return
        for effect in self.session.receive(text, time.monotonic()):
            try:
                await self._apply(effect)
            except HubUnavailable as exc:
                self.write_error(p.ProtocolError(p.INTERNAL_ERROR, f"not done: {exc}"))
            except Exception:  # a bug must not become a 1011 close for the client
                logger.exception("effect %s failed", type(effect).__name__)
                self.write_error(p.ProtocolError(p.INTERNAL_ERROR, "internal error"))

    async def _apply(self, effect: s.Effect) -> None:
        if isinstance(effect, s.Reply):
            if effect.error:
                self.node.stats.count_error(effect.error)
            self.write_text(effect.text)
        elif isinstance(effect, s.Close):
            self.request_close(effect.code, effect.reason)
        elif isinstance(effect, s.Subscribe):
            for channel in await self.node.subscribe_with_recovery(self, effect):
                self.session.forget(channel)
        elif isinstance(effect, s.Unsubscribe):
            for channel in effect.channels:
                self.session.forget(channel)
                await self.node.unsubscribe(self, channel)
                self.write_text(p.build_unsubscribed(channel, effect.frame_id))
        elif isinstance(effect, s.Publish):
            await self._publish(effect)
        elif isinstance(effect, s.Authenticate):
            await self._authenticate(effect)
        elif isinstance(effect, s.Dispatch):
            await dispatch(self, effect.frame)

    async def _authenticate(self, effect: s.Authenticate) -> None:
        credential = await credential_for_token(effect.token)
        if credential is None:
            self.request_close(p.CLOSE_AUTH_FAILED, "authentication failed")
        elif self.session.authenticated:
            if credential.principal.username == self.username:
                self.write_text(p.build_connected(
                    client_id=self.client_id, user=self.username, server=self.node.server_name,
                    heartbeat_interval=hub_settings.HEARTBEAT_INTERVAL, frame_id=effect.frame_id))
            else:
                self.write_error(p.ProtocolError(p.INVALID_MESSAGE,
                                                 "already authenticated as another user",
                                                 frame_id=effect.frame_id))
        else:
            await self._admit(credential, effect.frame_id)

    async def _publish(self, effect: s.Publish) -> None:
        try:
            # The one road every publication takes (hub.publish), as REST and handlers do.
            offset = await publish(effect.channel, effect.event, effect.data)
        except PublishError as exc:
            self.write_error(p.ProtocolError(exc.code, exc.message, channel=effect.channel,
                                             frame_id=effect.frame_id))
        except HubUnavailable as exc:
            self.write_error(p.ProtocolError(p.INTERNAL_ERROR, f"not published: {exc}",
                                             channel=effect.channel, frame_id=effect.frame_id))
        else:
            self.write_text(p.build_published(effect.channel, offset, effect.frame_id))

    # --- what the node and the housekeeping loop call -----------------------------------------

    def write_payload(self, payload: Payload) -> bool:
        if self.writer.write_payload(payload):
            self.node.stats.messages_sent += payload.count
            return True
        self.node.stats.dropped_sends += payload.count
        return False

    def write_text(self, text: str) -> bool:
        if self.writer.write_text(text):
            self.node.stats.messages_sent += 1
            return True
        return False

    def write_error(self, exc: p.ProtocolError) -> None:
        self.node.stats.count_error(exc.code)
        self.write_text(p.build_error_from(exc))

    def _touch(self) -> None:
        self.last_seen = time.monotonic()

    def _on_overflow(self) -> None:
        if not self._closing:
            self.node.stats.slow_consumer_closes += 1
            logger.warning("closing slow consumer %s: over %d queued bytes", self.client_id,
                           hub_settings.MAX_QUEUED_BYTES)
            self.request_close(p.CLOSE_SLOW_CONSUMER, "slow consumer")

    def request_close(self, code: int, reason: str = "") -> None:
        if self._closing:
            return
        self._closing = True
        self.state = "closing"
        self.node.remove_connection(self)
        self.writer.close(code, reason)

    def tick(self, now: float, heartbeat: Payload | None) -> None:
        """Called by the housekeeping loop: timeouts, then the heartbeat."""
        if self._closing:
            return
        if self.state == "authenticating" and self.auth_deadline and now > self.auth_deadline:
            self.request_close(p.CLOSE_AUTH_FAILED, "authentication timed out")
        elif credentials.expired(self.credential, time.time()):
            self.request_close(p.CLOSE_AUTH_FAILED, credentials.REVOKED_REASON)
        elif now - self.last_seen > hub_settings.CONNECTION_TIMEOUT:
            self.request_close(p.CLOSE_IDLE_TIMEOUT, "idle timeout")
        elif heartbeat is not None and self.state == "connected":
            self.write_payload(heartbeat)
