"""hub/engine/names.py group_name: hub channel names -> Channels group names.

Every output must pass Channels' own group-name check (``^[a-zA-Z\\d\\-_.]+$``, length < 100)
and distinct channels must never share a group. Pure: no layer, no server.
"""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from channels.layers import BaseChannelLayer
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.engine.names import group_name
from hub.socket.protocol import is_valid_channel

GROUP_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")
CHANNEL_ALPHABET = "ABCXYZabcxyz0189_.:-"
FULL_ALPHABET = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
PREFIXES = ["hub", "h", "my-app_2.prod"]

channel_names = st.text(alphabet=FULL_ALPHABET, min_size=1, max_size=100)
# user:<any Django username>: unicode \w plus ".@+-", up to 150 characters
django_usernames = st.from_regex(r"\A[\w.@+\-]{1,150}\Z", fullmatch=True).filter(
    lambda name: "\n" not in name)
user_channels = django_usernames.map(lambda name: f"user:{name}")
# names built from the escape's own vocabulary ("_x00e9" spelled out vs "é" escaped)
escape_lookalikes = st.lists(st.sampled_from(["_", "x", "y", "0", "e", "9", "@", "é", "\U00020000",
                                              "u", "c", "+", "-"]),
                             min_size=1, max_size=40).map(lambda parts: "user:" + "".join(parts))
# a narrow alphabet rich in the escape-relevant characters makes near-collisions likely
tricky_names = st.text(alphabet="_:uc.", min_size=1, max_size=100)


def assert_channels_accepts(name: str) -> None:
    assert isinstance(name, str)
    assert GROUP_RE.match(name), name
    assert len(name) < 100, (len(name), name)
    # and the real check in the installed Channels
    assert BaseChannelLayer().require_valid_group_name(name) is True


def unescape(prefix: str, group: str) -> str | None:
    """Inverse of the escaped form; None for the hashed form."""
    if group.startswith(f"{prefix}.h."):
        return None
    assert group.startswith(f"{prefix}.c.")
    body, out, i = group[len(prefix) + 3:], [], 0
    while i < len(body):
        if body[i] != "_":
            out.append(body[i])
            i += 1
        elif body[i + 1] in "uc":
            out.append({"u": "_", "c": ":"}[body[i + 1]])
            i += 2
        else:
            width = {"x": 4, "y": 6}[body[i + 1]]
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
    return "".join(out)


EDGE_CHANNELS = [
    "a", "jobs", "user:alice", "stock_updates", "_", ":", "-", ".", "_u", "_c", "__", "::",
    "_:", ":_", "a_cb", "a:b", "a_ub", "a__b", "a_u", "a_", "u", "c",
    ":" * 100, "_" * 100, ":_" * 50, "_:" * 50, "a" * 100, "a" * 93, "a" * 94, ":" * 46,
    ":" * 47, "_" * 46, "_" * 47, "user:" + "x" * 95, "x:_.-" * 20, "." * 100, "-" * 100,
    "user:carol@example.edu", "user:a+b", "user:d.e-f", "user:jürgen", "user:日本",
    "user:\U00020000", "user:_x0040", "user:@", "user:_x00e9", "user:é", "user:_y020000",
    "user:" + "x" * 150, "user:" + "@" * 150, "user:" + "x" * 88, "user:" + "x" * 89,
]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("channel", EDGE_CHANNELS)
def test_edge_channels_give_valid_group_names(prefix, channel):
    assert is_valid_channel(channel)
    assert_channels_accepts(group_name(prefix, channel))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_edge_channels_are_injective_and_invertible(prefix):
    groups = {}
    for channel in EDGE_CHANNELS:
        group = group_name(prefix, channel)
        assert group not in groups, (channel, groups.get(group))
        groups[group] = channel
        decoded = unescape(prefix, group)
        if decoded is not None:
            assert decoded == channel


def test_short_names_are_readable_long_ones_hashed():
    assert group_name("hub", "jobs") == "hub.c.jobs"
    assert group_name("hub", "user:carol@example.edu") == "hub.c.user_ccarol_x0040example.edu"
    assert group_name("hub", "user:a+b") == "hub.c.user_ca_x002bb"
    assert group_name("hub", "user:jürgen") == "hub.c.user_cj_x00fcrgen"
    assert group_name("hub", "user:\U00020000") == "hub.c.user_c_y020000"
    assert group_name("hub", "user:alice") == "hub.c.user_calice"
    assert group_name("hub", "stock_updates") == "hub.c.stock_uupdates"
    long_name = ":" * 100
    assert group_name("hub", long_name) == \
        "hub.h." + hashlib.sha256(long_name.encode()).hexdigest()


def test_boundary_between_escaped_and_hashed():
    # "hub.c." is 6 characters: 93 plain characters fit in 99, 94 do not
    assert group_name("hub", "a" * 93) == "hub.c." + "a" * 93
    assert group_name("hub", "a" * 94).startswith("hub.h.")
    assert len(group_name("hub", "a" * 93)) == 99


def test_deterministic():
    for channel in EDGE_CHANNELS:
        assert group_name("hub", channel) == group_name("hub", channel)


def test_prefixes_keep_groups_apart():
    assert group_name("hub", "jobs") != group_name("hub2", "jobs")
    assert group_name("hub", ":" * 100) != group_name("other", ":" * 100)


def test_exhaustive_short_names_are_injective():
    """Every name of length 1-4 over the escape-relevant alphabet maps to its own group."""
    alphabet = "_:uca."
    groups = {}
    for length in range(1, 5):
        for chars in itertools.product(alphabet, repeat=length):
            channel = "".join(chars)
            group = group_name("hub", channel)
            assert GROUP_RE.match(group)
            assert group not in groups, (channel, groups[group])
            groups[group] = channel


@settings(max_examples=600, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), channel=channel_names)
def test_any_valid_channel_gives_a_valid_group_name(prefix, channel):
    assert is_valid_channel(channel)
    assert_channels_accepts(group_name(prefix, channel))


@settings(max_examples=600, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), channel=st.one_of(channel_names, tricky_names))
def test_escaped_form_inverts(prefix, channel):
    decoded = unescape(prefix, group_name(prefix, channel))
    assert decoded is None or decoded == channel


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.one_of(channel_names, tricky_names,
                                st.text(alphabet=CHANNEL_ALPHABET, min_size=85, max_size=100)),
                      min_size=2, max_size=60, unique=True))
def test_distinct_channels_never_share_a_group(names):
    groups = [group_name("hub", name) for name in names]
    assert len(set(groups)) == len(names)


@settings(max_examples=300, deadline=None)
@given(a=tricky_names, b=tricky_names)
def test_pairs_collide_only_when_equal(a, b):
    assert (group_name("hub", a) == group_name("hub", b)) == (a == b)


def test_longest_allowed_prefix_still_gives_valid_group_names():
    prefix = "p" * 30  # the longest realtime_project/settings.py accepts
    assert_channels_accepts(group_name(prefix, ":" * 100))


def test_settings_refuse_a_prefix_too_long_for_group_names():
    import os
    import subprocess
    import sys

    env = dict(os.environ, HUB_CHANNEL_PREFIX="p" * 31)
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "HUB_CHANNEL_PREFIX" in result.stderr


@settings(max_examples=600, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), channel=st.one_of(user_channels, escape_lookalikes))
def test_any_django_username_gives_a_valid_group_name_that_inverts(prefix, channel):
    assert is_valid_channel(channel)
    group = group_name(prefix, channel)
    assert_channels_accepts(group)
    decoded = unescape(prefix, group)
    assert decoded is None or decoded == channel


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.one_of(channel_names, tricky_names, user_channels, escape_lookalikes),
                      min_size=2, max_size=60, unique=True))
def test_distinct_channels_with_usernames_never_share_a_group(names):
    groups = [group_name("hub", name) for name in names]
    assert len(set(groups)) == len(names)


@settings(max_examples=300, deadline=None)
@given(a=escape_lookalikes, b=escape_lookalikes)
def test_escape_lookalikes_collide_only_when_equal(a, b):
    assert (group_name("hub", a) == group_name("hub", b)) == (a == b)
