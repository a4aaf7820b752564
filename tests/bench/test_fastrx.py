"""The load tool's C receive loop (bench/fastrx.c) against hand-made server frames on a
socketpair: what it counts itself, and what it must hand back to Python untouched."""

from __future__ import annotations

import json
import os
import select
import socket
from time import time_ns

import pytest

from bench import fastrx


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def publication(seq: int, pad: int = 0) -> bytes:
    data = {"bseq": seq, "bts": time_ns()}
    if pad:
        data["pad"] = "x" * pad
    return frame(json.dumps({"type": "tick", "channel": "bench", "offset": seq + 1,
                             "data": data}).encode())


@pytest.fixture
def rig():
    lib = fastrx.load()
    assert lib is not None, fastrx.why_not()  # the machine has a C compiler (scripts/setup-system)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    stop_r, stop_w = os.pipe()
    ep = select.epoll()
    ep.register(ours.fileno(), select.EPOLLIN)
    ep.register(stop_r, select.EPOLLIN)
    rx = fastrx.FastRx(lib, max(ours.fileno(), stop_r))

    def run() -> int:
        return rx.run(ep.fileno(), stop_r, 100)

    yield rx, ours, theirs, run, stop_w
    ep.close()
    for fd in (stop_r, stop_w):
        os.close(fd)
    ours.close()
    theirs.close()


def test_counts_publications_and_their_latency(rig):
    rx, ours, theirs, run, _ = rig
    theirs.sendall(publication(0) + publication(1) + publication(2, pad=300))  # 126-length too
    assert run() == fastrx.RUN_BUDGET
    st = rx.state
    assert (st.deliveries, st.distinct, st.dups) == (3, 3, 0)
    assert len(rx.latencies()) == 3 and all(0 <= lat < 10**9 for lat in rx.latencies())
    assert rx.seen_bytes(ours.fileno())[:3] == b"\x01\x01\x01"


def test_a_publication_seen_twice_on_a_socket_is_a_duplicate(rig):
    rx, ours, theirs, run, _ = rig
    theirs.sendall(publication(5) + publication(5))
    run()
    assert (rx.state.deliveries, rx.state.distinct, rx.state.dups) == (2, 1, 1)
    assert [seq for _fd, seq, _ts in rx.dup_samples()] == [5]


def test_control_frames_and_what_follows_go_back_to_python(rig):
    rx, ours, theirs, run, _ = rig
    heartbeat, after = frame(b'{"type":"heartbeat"}'), publication(1)
    theirs.sendall(publication(0) + heartbeat + after)
    assert run() == fastrx.RUN_PYTHON
    assert rx.state.out_fd == ours.fileno()
    assert rx.pending() == heartbeat + after  # parsed by WSClient.data_received, unchanged
    assert rx.state.deliveries == 1  # only the one before the heartbeat was counted here


def test_pings_and_partial_frames_go_back_to_python(rig):
    rx, _ours, theirs, run, _ = rig
    ping = frame(b"p", opcode=0x9)
    theirs.sendall(ping)
    assert run() == fastrx.RUN_PYTHON and rx.pending() == ping
    whole = publication(3)
    theirs.sendall(whole[:10])
    assert run() == fastrx.RUN_PYTHON and rx.pending() == whole[:10]
    assert rx.state.deliveries == 0


def test_a_socket_python_holds_a_partial_frame_for_is_not_parsed_here(rig):
    rx, ours, theirs, run, _ = rig
    rx.slow[ours.fileno()] = 1
    whole = publication(0)
    theirs.sendall(whole)
    assert run() == fastrx.RUN_PYTHON and rx.pending() == whole
    assert rx.state.deliveries == 0


def test_end_of_stream_is_reported_with_its_socket(rig):
    rx, ours, theirs, run, _ = rig
    theirs.close()
    assert run() == fastrx.RUN_EOF and rx.state.out_fd == ours.fileno()


def test_a_command_on_the_pipe_returns_control(rig):
    _rx, _ours, _theirs, run, stop_w = rig
    os.write(stop_w, b"x")
    assert run() == fastrx.RUN_COMMAND


def test_nothing_to_read_returns_when_the_budget_is_spent(rig):
    rx, _ours, _theirs, run, _ = rig
    assert run() == fastrx.RUN_BUDGET and rx.state.reads == 0
