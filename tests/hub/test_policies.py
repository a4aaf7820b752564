"""hub/policies.py: the PROTOCOL.md §4 defaults, matching order, HUB_CHANNELS merging.

Pure tests: no server, no database.
"""

from __future__ import annotations


import pytest

from hub import policies as pol
from hub.policies import ANONYMOUS, PolicyError, Principal, build_policies, check_rule

ALICE = Principal("alice")
BOB = Principal("bob")
STAFF = Principal("root", is_staff=True)
WHO = {"anon": ANONYMOUS, "alice": ALICE, "bob": BOB, "staff": STAFF}

DEFAULTS = build_policies({}, default_history=100)


def test_principal():
    assert ANONYMOUS.is_authenticated is False
    assert ALICE.is_authenticated is True
    assert STAFF.is_staff is True
    assert Principal("x").is_staff is False


def may(policies, action: str, who: str, channel: str, auth_required: bool = True) -> bool:
    policy = policies.resolve(channel)
    assert policy is not None, channel
    return policy.allows(action, WHO[who], channel, auth_required)


# --- PROTOCOL.md §4 defaults: (channel, who) -> may subscribe ---------------------------------

SUBSCRIBE_DEFAULTS = [
    # built-in channels: authenticated users
    *[(name, who, who != "anon") for name in ("jobs", "nodes", "metrics", "notifications")
      for who in WHO],
    # alerts: staff only
    ("alerts", "anon", False), ("alerts", "alice", False), ("alerts", "bob", False),
    ("alerts", "staff", True),
    # user:<name>: that user and staff
    ("user:alice", "alice", True), ("user:alice", "bob", False), ("user:alice", "anon", False),
    ("user:alice", "staff", True), ("user:bob", "alice", False), ("user:bob", "bob", True),
    ("user:alice:x", "alice", False), ("user:alicex", "alice", False),
    ("user:", "alice", False),
    # catch-all: authenticated users
    ("stock_updates", "anon", False), ("stock_updates", "alice", True),
    ("stock_updates", "staff", True), ("test_channel", "bob", True),
    ("user", "alice", True),  # no colon: not a user channel, the catch-all applies
    ("jobs.extra", "alice", True), ("alerts2", "alice", True),
]


@pytest.mark.parametrize("channel, who, allowed", SUBSCRIBE_DEFAULTS)
def test_default_subscribe_rules(channel, who, allowed):
    assert may(DEFAULTS, "subscribe", who, channel) is allowed


@pytest.mark.parametrize("channel", ["jobs", "nodes", "metrics", "notifications", "alerts",
                                     "user:alice", "stock_updates", "anything"])
@pytest.mark.parametrize("who", list(WHO))
def test_default_publish_is_nobody_even_for_staff(channel, who):
    assert may(DEFAULTS, "publish", who, channel) is False
    assert may(DEFAULTS, "publish", who, channel, auth_required=False) is False


@pytest.mark.parametrize("channel, who, allowed", [
    ("stock_updates", "anon", True),   # catch-all: anyone when auth is off
    ("test_channel", "anon", True),
    ("alerts", "anon", False),         # staff still needs an identity
    ("alerts", "alice", False),
    ("user:alice", "anon", False),     # owner still needs an identity
    ("user:alice", "alice", True),
    ("user:alice", "bob", False),
])
def test_defaults_with_auth_off(channel, who, allowed):
    assert may(DEFAULTS, "subscribe", who, channel, auth_required=False) is allowed


def test_default_patterns_and_history():
    assert set(DEFAULTS.exact) == {"jobs", "nodes", "metrics", "notifications", "alerts"}
    assert sorted(policy.pattern for policy in DEFAULTS.prefixes) == ["jobs.*", "metrics.*", "nodes.*", "user:*"]
    assert DEFAULTS.catch_all is not None and DEFAULTS.catch_all.pattern == "*"
    for policy in [*DEFAULTS.exact.values(), *DEFAULTS.prefixes, DEFAULTS.catch_all]:
        assert policy.history == 100
        assert policy.publish == "nobody"
    assert build_policies({}, default_history=7).resolve("jobs").history == 7


def test_defaults_are_not_mutated_by_overrides():
    before = {k: dict(v) for k, v in pol.DEFAULT_POLICIES.items()}
    build_policies({"*": None, "jobs": {"subscribe": "staff"}, "new": {}}, default_history=1)
    assert pol.DEFAULT_POLICIES == before
    assert build_policies({}, 1).catch_all is not None


# --- check_rule --------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, who, auth_required, allowed", [
    ("anyone", "anon", True, True), ("anyone", "alice", True, True),
    ("anyone", "anon", False, True),
    ("authenticated", "anon", True, False), ("authenticated", "alice", True, True),
    ("authenticated", "anon", False, True), ("authenticated", "staff", True, True),
    ("staff", "anon", True, False), ("staff", "alice", True, False),
    ("staff", "staff", True, True), ("staff", "anon", False, False),
    ("nobody", "anon", True, False), ("nobody", "alice", True, False),
    ("nobody", "staff", True, False), ("nobody", "staff", False, False),
    ("owner", "alice", True, True), ("owner", "bob", True, False),
    ("owner", "anon", True, False), ("owner", "anon", False, False),
    ("owner", "staff", True, True),
    ("bogus", "alice", True, False),
])
def test_check_rule(rule, who, auth_required, allowed):
    assert check_rule(rule, WHO[who], "user:alice", "user:*", auth_required) is allowed


# --- most specific wins ----------------------------------------------------------------------

SPECIFIC = build_policies({
    "chat.*": {"subscribe": "authenticated", "publish": "authenticated", "history": 50},
    "chat.room.*": {"subscribe": "staff", "publish": "staff", "history": 5},
    "chat.room.lobby": {"subscribe": "anyone", "publish": "anyone", "history": 0},
    "c*": {"subscribe": "nobody"},
}, default_history=100)


@pytest.mark.parametrize("channel, pattern", [
    ("chat.room.lobby", "chat.room.lobby"),   # exact beats every prefix
    ("chat.room.lobby2", "chat.room.*"),      # longest prefix
    ("chat.room.", "chat.room.*"),
    ("chat.room", "chat.*"),
    ("chat.general", "chat.*"),
    ("chat.", "chat.*"),
    ("chat", "c*"),
    ("cat", "c*"),
    ("c", "c*"),
    ("user:zed", "user:*"),
    ("jobs", "jobs"),
    ("dog", "*"),
    ("Chat.x", "*"),                           # prefixes are case-sensitive
])
def test_most_specific_policy_wins(channel, pattern):
    assert SPECIFIC.resolve(channel).pattern == pattern


def test_prefix_order_does_not_depend_on_declaration_order():
    a = build_policies({"ab*": {"subscribe": "staff"}, "abcd*": {"subscribe": "anyone"},
                        "a*": {"subscribe": "nobody"}}, 1)
    b = build_policies({"abcd*": {"subscribe": "anyone"}, "a*": {"subscribe": "nobody"},
                        "ab*": {"subscribe": "staff"}}, 1)
    for policies in (a, b):
        assert policies.resolve("abcdef").pattern == "abcd*"
        assert policies.resolve("abc").pattern == "ab*"
        assert policies.resolve("axe").pattern == "a*"
        assert policies.resolve("zzz").pattern == "*"


def test_override_values_apply():
    lobby = SPECIFIC.resolve("chat.room.lobby")
    assert (lobby.subscribe, lobby.publish, lobby.history) == ("anyone", "anyone", 0)
    assert SPECIFIC.resolve("chat.x").history == 50
    assert SPECIFIC.resolve("cat").history == 100  # history default
    assert SPECIFIC.resolve("cat").publish == "nobody"  # publish default
    assert build_policies({"x": {}}, 3).resolve("x").subscribe == "authenticated"


@pytest.mark.parametrize("action, who, channel, allowed", [
    ("publish", "alice", "chat.general", True),
    ("publish", "anon", "chat.general", False),
    ("publish", "alice", "chat.room.9", False),
    ("publish", "staff", "chat.room.9", True),
    ("publish", "anon", "chat.room.lobby", True),
    ("subscribe", "staff", "cat", False),  # nobody denies staff too
    ("publish", "staff", "jobs", False),
])
def test_override_rules(action, who, channel, allowed):
    assert may(SPECIFIC, action, who, channel) is allowed


def test_owner_rule_on_a_custom_prefix():
    policies = build_policies({"inbox.*": {"subscribe": "owner", "publish": "owner"}}, 1)
    assert may(policies, "subscribe", "alice", "inbox.alice") is True
    assert may(policies, "publish", "alice", "inbox.alice") is True
    assert may(policies, "subscribe", "alice", "inbox.bob") is False
    assert may(policies, "subscribe", "staff", "inbox.bob") is True


# --- HUB_CHANNELS merge ----------------------------------------------------------------------

def test_null_catch_all_makes_other_names_unknown():
    policies = build_policies({"*": None}, 100)
    assert policies.catch_all is None
    assert policies.resolve("stock_updates") is None
    assert policies.resolve("test_channel") is None
    assert policies.resolve("jobs").pattern == "jobs"
    assert policies.resolve("user:alice").pattern == "user:*"


def test_protocol_md_example():
    policies = build_policies({
        "*": None,
        "chat.*": {"subscribe": "authenticated", "publish": "authenticated", "history": 50},
        "ops": {"subscribe": "staff", "publish": "nobody"},
    }, 100)
    assert policies.resolve("stock_updates") is None
    assert policies.resolve("chat.x").history == 50
    assert may(policies, "publish", "alice", "chat.x") is True
    assert may(policies, "subscribe", "alice", "ops") is False
    assert may(policies, "subscribe", "staff", "ops") is True
    assert may(policies, "publish", "staff", "ops") is False


@pytest.mark.parametrize("removed, channel, fallback", [
    ("alerts", "alerts", "*"),
    ("user:*", "user:alice", "*"),
    ("jobs", "jobs", "*"),
    ("not_a_default", "jobs", "jobs"),  # removing something absent is harmless
])
def test_null_removes_one_default(removed, channel, fallback):
    policies = build_policies({removed: None}, 100)
    assert policies.resolve(channel).pattern == fallback


def test_removed_alerts_falls_to_catch_all_so_any_user_may_subscribe():
    policies = build_policies({"alerts": None}, 100)
    assert may(policies, "subscribe", "alice", "alerts") is True


def test_override_replaces_a_default_whole():
    policies = build_policies({"alerts": {"subscribe": "authenticated"}}, 100)
    assert may(policies, "subscribe", "alice", "alerts") is True


# --- PolicyError ---------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {"x": {"subscribe": "everyone"}},
    {"x": {"publish": "admins"}},
    {"x": {"subscribe": None}},
    {"x": {"subscribe": "Staff"}},
    {"x": {"subscribe": ["staff"]}},
    {"x": {"subscribers": "staff"}},
    {"x": {"subscribe": "staff", "ttl": 3}},
    {"x": {"history": -1}},
    {"x": {"history": True}},
    {"x": {"history": False}},
    {"x": {"history": 1.5}},
    {"x": {"history": 2.0}},
    {"x": {"history": "10"}},
    {"x": {"history": None}},
    {"a*b": {}},
    {"*a": {}},
    {"**": {}},
    {"a*b*": {}},
    {"": {}},
    {5: {}},
    {"x": "staff"},
    {"x": ["staff"]},
    {"x": 1},
    {"x": True},
    {"*": "anyone"},
])
def test_bad_overrides_raise_policy_error(overrides):
    with pytest.raises(PolicyError):
        build_policies(overrides, 100)


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


@pytest.mark.parametrize("history", [0, 1, 100, 10**6])
def test_valid_history(history):
    assert build_policies({"x": {"history": history}}, 100).resolve("x").history == history


@pytest.mark.parametrize("pattern, kind", [("*", "catch_all"), ("a*", "prefix"), ("a", "exact"),
                                           ("a:b.c-d_e", "exact"), ("user:*", "prefix")])
def test_pattern_kinds(pattern, kind):
    policies = build_policies({"*": None, "user:*": None, "jobs.*": None, "nodes.*": None,
                               "metrics.*": None, pattern: {}}, 1)
    if kind == "catch_all":
        assert policies.catch_all is not None
    elif kind == "prefix":
        assert [p.pattern for p in policies.prefixes] == [pattern]
    else:
        assert pattern in policies.exact


def test_other_clusters_channels_get_the_primarys_rules_never_the_catch_all():
    """slurm_monitor.clusters: cluster b publishes on jobs.b / nodes.b / metrics.b."""
    plain = build_policies({}, 100)
    private = build_policies({}, 100, private_jobs=True)
    for name in ("jobs.b", "nodes.b", "metrics.b"):
        assert plain.resolve(name).pattern == name.split(".")[0] + ".*"
        assert plain.resolve(name).publish == "nobody"
    assert private.resolve("jobs.b").subscribe == "staff"
    assert private.resolve("jobs").subscribe == "staff"
    assert plain.resolve("jobs.b").subscribe == "authenticated"
