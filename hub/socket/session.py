"""Per-connection state, sans I/O: a client frame in, a list of effects out.

Pure: standard library only. The consumer carries the effects out (socket writes, engine
calls). Checks that need no I/O live here: authentication state, rate limit, channel name
rules, channel policies, the subscription limit and frame shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from hub.socket import protocol as p
from hub.policies import ANONYMOUS, PolicySet, Principal, may_publish


# --- effects ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    text: str
    error: str | None = None  # the error code, when this reply is an error frame


@dataclass(frozen=True)
class Close:
    code: int
    reason: str = ""


@dataclass(frozen=True)
class SubscribeItem:
    channel: str
    since: int | None
    epoch: str | None


@dataclass(frozen=True)
class Subscribe:
    """Subscribe in request order; ``items`` mixes accepted channels and error replies."""

    items: tuple[Union[SubscribeItem, Reply], ...]
    frame_id: Any


@dataclass(frozen=True)
class Unsubscribe:
    channels: tuple[str, ...]
    frame_id: Any


@dataclass(frozen=True)
class Publish:
    channel: str
    event: str
    data: Any
    frame_id: Any


@dataclass(frozen=True)
class Authenticate:
    token: str
    frame_id: Any


@dataclass(frozen=True)
class Dispatch:
    """An application-registered type: the consumer calls its handler."""

    frame: p.ClientFrame


Effect = Union[Reply, Close, Subscribe, Unsubscribe, Publish, Authenticate, Dispatch]


def error_reply(exc: p.ProtocolError) -> Reply:
    return Reply(p.build_error_from(exc), error=exc.code)


# --- rate limit ---------------------------------------------------------------------------

@dataclass(slots=True)  # one per socket: no instance dict
class RateWindow:
    """Fixed one-minute window: over ``limit`` frames are dropped; over 2x the socket closes."""

    limit: int
    window_seconds: float = 60.0
    started: float = 0.0
    count: int = 0

    def check(self, now: float) -> str:
        if now - self.started >= self.window_seconds:
            self.started, self.count = now, 0
        self.count += 1
        if self.count > 2 * self.limit:
            return "abuse"
        if self.count > self.limit:
            return "limited"
        return "ok"


# --- the session --------------------------------------------------------------------------

@dataclass(slots=True)  # one per socket: no instance dict (~0.3 KB per idle connection)
class Session:
    client_id: str
    policies: PolicySet
    require_auth: bool
    max_subscriptions: int
    rate: RateWindow
    is_registered_type: Callable[[str], bool] = lambda _type: False
    principal: Principal = ANONYMOUS
    authenticated: bool = False
    subscriptions: set[str] = field(default_factory=set)  # explicit ones, counted
    implicit: set[str] = field(default_factory=set)  # "all" and the user's own channel

    @property
    def admitted(self) -> bool:
        """May use the protocol beyond auth and ping."""
        return self.authenticated or not self.require_auth

    def set_principal(self, principal: Principal, implicit: set[str]) -> None:
        self.principal = principal
        self.authenticated = principal.is_authenticated
        self.implicit = implicit

    def receive(self, text: str | None, now: float) -> list[Effect]:
        verdict = self.rate.check(now)
        if verdict == "abuse":
            return [Close(p.CLOSE_RATE_LIMIT_ABUSE, "rate limit abuse")]
        if verdict == "limited":  # the direct reply to the dropped frame: echo its id
            return [error_reply(p.ProtocolError(p.RATE_LIMITED,
                                                "too many frames; this one was dropped",
                                                frame_id=p.peek_frame_id(text)))]
        try:
            frame = p.parse_client_frame(text)
            return self._handle(frame)
        except p.ProtocolError as exc:
            return [error_reply(exc)]

    def _handle(self, frame: p.ClientFrame) -> list[Effect]:
        kind = frame.type
        if kind == "ping":
            return [Reply(p.build_pong(frame.id))]
        if kind == "auth":
            token = frame.body.get("token")
            if not isinstance(token, str) or not token:
                raise p.ProtocolError(p.INVALID_MESSAGE, "token is required", frame_id=frame.id)
            return [Authenticate(token, frame.id)]
        if not self.admitted:
            raise p.ProtocolError(p.NOT_AUTHENTICATED, "authenticate first: send auth",
                                  frame_id=frame.id)
        if kind == "pong":
            return []
        if kind == "subscribe":
            return [self._subscribe(frame)]
        if kind == "unsubscribe":
            channels = p.parse_channels(frame)
            for name in channels:
                if not p.is_valid_channel(name):
                    raise p.ProtocolError(p.INVALID_CHANNEL, f"invalid channel name {name!r}",
                                          channel=name, frame_id=frame.id)
            return [Unsubscribe(channels, frame.id)]
        if kind == "publish":
            return [self._publish(frame)]
        if kind in p.CONTROL_TYPES or not self.is_registered_type(kind):
            raise p.ProtocolError(p.UNKNOWN_TYPE, f"unknown message type {kind!r}",
                                  frame_id=frame.id)
        return [Dispatch(frame)]

    def check_channel(self, name: str, action: str, frame_id: Any) -> None:
        """Raise the PROTOCOL.md error for ``action`` on ``name``, or return if allowed."""
        if not p.is_valid_channel(name):
            raise p.ProtocolError(p.INVALID_CHANNEL, f"invalid channel name {name!r}",
                                  channel=name, frame_id=frame_id)
        if action == "subscribe" and name in self.implicit:
            return
        policy = self.policies.resolve(name)
        if policy is None:
            raise p.ProtocolError(p.UNKNOWN_CHANNEL, f"no channel {name!r}", channel=name,
                                  frame_id=frame_id)
        if not policy.allows(action, self.principal, name, self.require_auth):
            raise p.ProtocolError(p.FORBIDDEN, f"not allowed to {action} on {name!r}",
                                  channel=name, frame_id=frame_id)

    def _subscribe(self, frame: p.ClientFrame) -> Subscribe:
        request = p.parse_subscribe(frame)
        epochs = _parse_epochs(frame, request.channels)
        items: list[Union[SubscribeItem, Reply]] = []
        for name in request.channels:
            try:
                self.check_channel(name, "subscribe", frame.id)
                counted = name not in self.implicit and name not in self.subscriptions
                if counted and len(self.subscriptions) >= self.max_subscriptions:
                    raise p.ProtocolError(
                        p.TOO_MANY_SUBSCRIPTIONS,
                        f"at most {self.max_subscriptions} subscriptions per socket",
                        channel=name, frame_id=frame.id)
            except p.ProtocolError as exc:
                items.append(error_reply(exc))
                continue
            if name not in self.implicit:
                self.subscriptions.add(name)
            items.append(SubscribeItem(name, request.since.get(name), epochs.get(name)))
        return Subscribe(tuple(items), frame.id)

    def _publish(self, frame: p.ClientFrame) -> Publish:
        request = p.parse_publish(frame)
        check_publish(self.policies, self.principal, request.channel, self.require_auth,
                      frame.id)
        return Publish(request.channel, request.event, request.data, frame.id)

    def forget(self, channel: str) -> None:
        self.subscriptions.discard(channel)
        self.implicit.discard(channel)


def check_publish(policies: PolicySet, principal: Principal, channel: Any, require_auth: bool,
                  frame_id: Any = None) -> None:
    """THE publish check for client roads (the ``publish`` frame and every registered
    handler, through ``HandlerContext.publish``): raise the PROTOCOL.md error, or return.
    The rule itself is ``hub.policies.may_publish`` (a ``hub.broadcast`` holder passes)."""
    if not p.is_valid_channel(channel):
        raise p.ProtocolError(p.INVALID_CHANNEL, f"invalid channel name {channel!r}",
                              channel=channel if isinstance(channel, str) else None,
                              frame_id=frame_id)
    if may_publish(policies, principal, channel, require_auth):
        return
    if policies.resolve(channel) is None:
        raise p.ProtocolError(p.UNKNOWN_CHANNEL, f"no channel {channel!r}", channel=channel,
                              frame_id=frame_id)
    raise p.ProtocolError(p.FORBIDDEN, f"not allowed to publish on {channel!r}",
                          channel=channel, frame_id=frame_id)


def _parse_epochs(frame: p.ClientFrame, channels: tuple[str, ...]) -> dict[str, str]:
    """Optional ``epoch`` (with ``channel``) or ``{channel: epoch}``: lets the hub detect a
    lost history even when offsets grew back past ``since`` (PROTOCOL.md §5)."""
    raw = frame.body.get("epoch")
    if raw is None:
        return {}
    if isinstance(raw, str) and len(channels) == 1:
        return {channels[0]: raw}
    if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        return dict(raw)
    raise p.ProtocolError(p.INVALID_MESSAGE, "epoch must be a string or {channel: epoch}",
                          frame_id=frame.id)
