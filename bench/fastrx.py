"""Builds and drives ``bench/fastrx.c``: the subscriber workers' receive loop in C.

The C loop counts the common case (complete publication frames) and hands everything else
back to ``WSClient.data_received``, so the protocol handling (heartbeat -> pong, close codes,
control frames, frames cut across reads) stays in one place, in Python. Built once per
source version with the machine's C compiler into ``~/.cache/hub-bench/`` (nothing is
committed); without a compiler the tool falls back to the pure Python loop and says so in the
results (``client_rx``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from array import array
from pathlib import Path

SOURCE = Path(__file__).with_name("fastrx.c")
DUP_SAMPLES = 20
SEQ_CAPACITY = 1 << 16  # publications a socket can be checked for (bits per socket)
LAT_CAPACITY = 4_000_000

RUN_BUDGET = 0  # rx_run results
RUN_COMMAND = 1
RUN_PYTHON = 2
RUN_EOF = 3


# byte -> its 8 bits as 8 bytes of 0/1, least significant first
_SPREAD = [bytes((b >> i) & 1 for i in range(8)) for b in range(256)]


class _State(ctypes.Structure):
    _fields_ = [
        ("lats", ctypes.c_void_p), ("lat_cap", ctypes.c_int64), ("lat_n", ctypes.c_int64),
        ("deliveries", ctypes.c_int64), ("distinct", ctypes.c_int64), ("dups", ctypes.c_int64),
        ("first_rx", ctypes.c_int64), ("last_rx", ctypes.c_int64),
        ("seen", ctypes.c_void_p), ("seen_stride", ctypes.c_int64), ("max_fd", ctypes.c_int64),
        ("slow", ctypes.c_void_p), ("buf", ctypes.c_void_p), ("buf_cap", ctypes.c_int64),
        ("out_fd", ctypes.c_int64), ("out_off", ctypes.c_int64), ("out_len", ctypes.c_int64),
        ("reads", ctypes.c_int64), ("max_seq", ctypes.c_int64), ("dup_n", ctypes.c_int64),
        ("dup_fd", ctypes.c_int64 * DUP_SAMPLES), ("dup_seq", ctypes.c_int64 * DUP_SAMPLES),
        ("dup_ts", ctypes.c_int64 * DUP_SAMPLES),
    ]


_lib = None
_why_not: str | None = None


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hub-bench"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base
    except OSError:
        return Path(tempfile.gettempdir())


def load():
    """The compiled library, or None (``why_not()`` says why)."""
    global _lib, _why_not
    if _lib is not None or _why_not is not None:
        return _lib
    if os.environ.get("BENCH_PYTHON_RX"):
        _why_not = "BENCH_PYTHON_RX set"
        return None
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    source = SOURCE.read_bytes()
    target = _cache_dir() / f"fastrx-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if not target.exists():
        if cc is None:
            _why_not = "no C compiler"
            return None
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            _why_not = f"compile failed: {done.stderr.strip()[:200]}"
            return None
        os.replace(tmp, target)
    lib = ctypes.CDLL(str(target))
    lib.rx_run.argtypes = [ctypes.POINTER(_State), ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.rx_run.restype = ctypes.c_int
    _lib = lib
    return lib


def why_not() -> str | None:
    return _why_not


class FastRx:
    """One worker's C receive state over an epoll object that Python registered fds with."""

    def __init__(self, lib, max_fd: int, buf_size: int = 262144) -> None:
        self._lib = lib
        self.stride = SEQ_CAPACITY // 8
        self.max_fd = max_fd
        self.lats = array("q", bytes(8 * LAT_CAPACITY))
        self.seen = bytearray(self.stride * (max_fd + 1))
        self.slow = bytearray(max_fd + 1)
        self.buf = bytearray(buf_size)
        # ctypes views keep the buffers' addresses; the objects above keep them alive.
        self._views = [(ctypes.c_char * len(b)).from_buffer(b) for b in
                       (self.seen, self.slow, self.buf)]
        lats_addr, _ = self.lats.buffer_info()
        st = self.state = _State()
        st.lats, st.lat_cap = lats_addr, LAT_CAPACITY
        st.seen, st.seen_stride, st.max_fd = ctypes.addressof(self._views[0]), self.stride, max_fd
        st.slow = ctypes.addressof(self._views[1])
        st.buf, st.buf_cap = ctypes.addressof(self._views[2]), buf_size
        st.max_seq = -1
        self._ref = ctypes.byref(st)

    def run(self, epfd: int, stop_fd: int, budget_ms: int) -> int:
        return self._lib.rx_run(self._ref, epfd, stop_fd, budget_ms)

    def pending(self) -> bytes:
        st = self.state
        return bytes(self.buf[st.out_off:st.out_off + st.out_len])

    def seen_bytes(self, fd: int) -> bytes:
        """Publications seen on ``fd`` in ``WSClient.seen``'s form: byte N is 1 if N came."""
        if fd > self.max_fd or self.state.max_seq < 0:
            return b""
        used = self.state.max_seq // 8 + 1
        bits = self.seen[fd * self.stride:fd * self.stride + used]
        return b"".join([_SPREAD[b] for b in bits])

    def latencies(self) -> array:
        return self.lats[:self.state.lat_n]

    def dup_samples(self) -> list[tuple[int, int, int]]:
        st = self.state
        return [(st.dup_fd[i], st.dup_seq[i], st.dup_ts[i]) for i in range(st.dup_n)]
