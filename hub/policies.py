"""Channel policies: which channel names exist and who may subscribe or publish (PROTOCOL.md §4).

Pure: standard library only. Policies are matched by exact name, then the longest ``prefix*``,
then ``*``. ``HUB_CHANNELS`` is merged over ``DEFAULT_POLICIES``; ``null`` removes a default.
With ``private_jobs`` (``HUB_PRIVATE_JOBS``, for Slurm's ``PrivateData=jobs``) the default
``jobs`` policy is staff-only; each user follows their own jobs on ``user:<name>``.

``user:<name>`` channels are named by Slurm user (``Principal.personal_name``: the Slurm user
``hub.identity.slurm_user_for`` gives, which is the username unless staff or a site login
mapped it): ``owner`` admits the principal whose Slurm user is the suffix, and no one else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

RULES = ("anyone", "authenticated", "staff", "owner", "nobody")


class PolicyError(ValueError):
    """A policy in HUB_CHANNELS is malformed."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the part of a Django user the policies need."""

    username: str | None
    is_staff: bool = False
    # Holds Django's ``hub.broadcast`` permission: a server-side publisher (the Slurm monitor,
    # an integrating service). It may publish where the policy says ``nobody`` for clients,
    # as the server itself does; see ``may_publish``.
    can_broadcast: bool = False
    # The Slurm user this principal is (``hub.identity.slurm_user_for``); None: not looked up,
    # the username stands for it; "": none (another account's mapping claims the username).
    slurm_user: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.username is not None

    @property
    def personal_name(self) -> str | None:
        """The name of this principal's own ``user:<name>`` channel (None: it has none)."""
        if not self.is_authenticated:
            return None
        name = self.username if self.slurm_user is None else self.slurm_user
        return name or None


ANONYMOUS = Principal(username=None)


@dataclass(frozen=True)
class ChannelPolicy:
    pattern: str
    subscribe: str
    publish: str
    history: int

    def allows(self, action: str, principal: Principal, channel: str,
               auth_required: bool = True) -> bool:
        rule = self.subscribe if action == "subscribe" else self.publish
        return check_rule(rule, principal, channel, self.pattern, auth_required)


def check_rule(rule: str, principal: Principal, channel: str, pattern: str,
               auth_required: bool = True) -> bool:
    """With authentication off (HUB_REQUIRE_AUTH=false), ``authenticated`` admits anyone:
    there is no authentication to pass. ``staff`` and ``owner`` still need an identity."""
    if rule == "nobody":
        return False
    if principal.is_staff:
        return True
    if rule == "anyone":
        return True
    if rule == "authenticated":
        return principal.is_authenticated or not auth_required
    if rule == "owner":
        prefix = pattern[:-1] if pattern.endswith("*") else pattern
        owner = principal.personal_name
        return owner is not None and channel[len(prefix):] == owner
    return False  # "staff" and anything unknown (validated away at start-up)


DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "jobs": {"subscribe": "authenticated", "publish": "nobody"},
    "nodes": {"subscribe": "authenticated", "publish": "nobody"},
    "metrics": {"subscribe": "authenticated", "publish": "nobody"},
    # Another cluster's channels (slurm_monitor.clusters): the same rules as the primary's,
    # so a second cluster never falls to the catch-all.
    "jobs.*": {"subscribe": "authenticated", "publish": "nobody"},
    "nodes.*": {"subscribe": "authenticated", "publish": "nobody"},
    "metrics.*": {"subscribe": "authenticated", "publish": "nobody"},
    "notifications": {"subscribe": "authenticated", "publish": "nobody"},
    "alerts": {"subscribe": "staff", "publish": "nobody"},
    "user:*": {"subscribe": "owner", "publish": "nobody"},
    "*": {"subscribe": "authenticated", "publish": "nobody"},
}

# HUB_PRIVATE_JOBS: every job on ``jobs`` is for staff only (owners get theirs on ``user:``).
PRIVATE_JOBS_POLICY: dict[str, Any] = {"subscribe": "staff", "publish": "nobody"}


@dataclass(frozen=True)
class PolicySet:
    exact: Mapping[str, ChannelPolicy]
    prefixes: tuple[ChannelPolicy, ...]  # longest prefix first
    catch_all: ChannelPolicy | None

    def resolve(self, channel: str) -> ChannelPolicy | None:
        """The most specific policy for ``channel``, or None (unknown channel)."""
        policy = self.exact.get(channel)
        if policy is not None:
            return policy
        for candidate in self.prefixes:
            if channel.startswith(candidate.pattern[:-1]):
                return candidate
        return self.catch_all


def _build_one(pattern: str, raw: Any, default_history: int) -> ChannelPolicy:
    if not isinstance(raw, dict):
        raise PolicyError(f"policy for {pattern!r} must be an object or null")
    unknown = set(raw) - {"subscribe", "publish", "history"}
    if unknown:
        raise PolicyError(f"policy for {pattern!r} has unknown keys: {sorted(unknown)}")
    subscribe = raw.get("subscribe", "authenticated")
    publish = raw.get("publish", "nobody")
    for key, rule in (("subscribe", subscribe), ("publish", publish)):
        if rule not in RULES:
            raise PolicyError(f"policy for {pattern!r}: {key} must be one of {', '.join(RULES)}")
    history = raw.get("history", default_history)
    if not isinstance(history, int) or isinstance(history, bool) or history < 0:
        raise PolicyError(f"policy for {pattern!r}: history must be an integer >= 0")
    return ChannelPolicy(pattern=pattern, subscribe=subscribe, publish=publish, history=history)


def build_policies(overrides: Mapping[str, Any], default_history: int,
                   private_jobs: bool = False) -> PolicySet:
    """Merge ``overrides`` over the defaults and index them for matching.

    ``private_jobs`` changes the *default* ``jobs`` and ``jobs.*`` (other clusters) policies
    to staff-only; an explicit key in ``overrides`` still wins (the operator said so)."""
    merged: dict[str, Any] = dict(DEFAULT_POLICIES)
    if private_jobs:
        merged["jobs"] = dict(PRIVATE_JOBS_POLICY)
        merged["jobs.*"] = dict(PRIVATE_JOBS_POLICY)
    for pattern, raw in overrides.items():
        if not isinstance(pattern, str) or not pattern:
            raise PolicyError("policy keys must be non-empty strings")
        if "*" in pattern[:-1]:
            raise PolicyError(f"{pattern!r}: '*' is allowed only at the end")
        if raw is None:
            merged.pop(pattern, None)
        else:
            merged[pattern] = raw
    exact: dict[str, ChannelPolicy] = {}
    prefixes: list[ChannelPolicy] = []
    catch_all = None
    for pattern, raw in merged.items():
        policy = _build_one(pattern, raw, default_history)
        if pattern == "*":
            catch_all = policy
        elif pattern.endswith("*"):
            prefixes.append(policy)
        else:
            exact[pattern] = policy
    prefixes.sort(key=lambda p: len(p.pattern), reverse=True)
    return PolicySet(exact=exact, prefixes=tuple(prefixes), catch_all=catch_all)


def may_publish(policies: PolicySet, principal: Principal, channel: str,
                auth_required: bool = True) -> bool:
    """THE publish rule, for every road that puts something on a channel: the WebSocket
    ``publish`` frame, every registered handler (``chat_message`` included) and REST.

    A principal with ``hub.broadcast`` publishes anywhere (it speaks for the server);
    everyone else needs the channel's ``publish`` rule. An unknown channel: no one but a
    broadcaster (PROTOCOL.md section 4)."""
    if principal.can_broadcast:
        return True
    policy = policies.resolve(channel)
    return policy is not None and policy.allows("publish", principal, channel, auth_required)
