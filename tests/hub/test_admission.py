"""hub/socket/admission.py: the per-process caps, pure (no server)."""

from __future__ import annotations

from hub.socket.admission import ANONYMOUS, AUTHENTICATED, Admission, Gate, client_address


def test_anonymous_cap_and_per_address_cap_never_touch_authenticated_places():
    counts = Admission()
    gates = [Gate(counts, "10.0.0.1") for _ in range(3)]
    assert [g.enter_anonymous(max_anonymous=5, max_per_address=2) for g in gates] == [
        None, None, "too many unauthenticated sockets from this address"]
    other = Gate(counts, "10.0.0.2")
    assert other.enter_anonymous(max_anonymous=5, max_per_address=2) is None
    assert (counts.anonymous, counts.by_address) == (3, {"10.0.0.1": 2, "10.0.0.2": 1})
    assert Gate(counts, "10.0.0.3").enter_anonymous(max_anonymous=3, max_per_address=9) == \
        "server at its limit for unauthenticated sockets"
    # authenticated places are counted apart: anonymous sockets never use them up
    user = Gate(counts, "10.0.0.1")
    assert user.enter_authenticated(max_connections=1) is True
    assert Gate(counts, "10.0.0.9").enter_authenticated(max_connections=1) is False
    assert (counts.authenticated, user.held) == (1, AUTHENTICATED)


def test_authenticating_moves_a_socket_from_the_anonymous_count_and_release_undoes_all():
    counts = Admission()
    gate = Gate(counts, "::1")
    assert gate.enter_anonymous(1, 1) is None and gate.held == ANONYMOUS
    assert gate.enter_authenticated(10) is True
    assert (counts.anonymous, counts.by_address, counts.authenticated) == (0, {}, 1)
    assert gate.enter_authenticated(10) is True  # idempotent
    assert counts.authenticated == 1
    gate.release()
    gate.release()  # twice is harmless
    assert (counts.anonymous, counts.authenticated, gate.held) == (0, 0, None)
    refused = Gate(counts, "::1")
    assert refused.enter_authenticated(0) is False
    assert refused.held is None  # a refused socket holds nothing to give back


def test_a_full_authenticated_cap_keeps_the_anonymous_place():
    counts = Admission()
    Gate(counts, "a").enter_authenticated(1)
    gate = Gate(counts, "a")
    gate.enter_anonymous(5, 5)
    assert gate.enter_authenticated(1) is False
    assert (gate.held, counts.anonymous) == (ANONYMOUS, 1)


def test_client_address():
    assert client_address({"client": ["127.0.0.1", 5000]}) == "127.0.0.1"
    assert client_address({"client": None}) == ""
    assert client_address({}) == ""
