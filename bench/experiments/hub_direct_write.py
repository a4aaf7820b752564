"""EXPERIMENT (bench only, not the hub's code): the hub under daphne with one change in the
fan-out write path, to measure what py-spy blamed.

py-spy on the hub's fan-out shows most of each delivery in Twisted's deferred write
(``transport.write`` only buffers and registers the socket for writability: an epoll_ctl to
add, a reactor turn, ``doWrite`` -> ``send``, an epoll_ctl to remove) and in autobahn's
``sendData``, which formats debug-log arguments (``hltype``/``hlval``, click styling) on
every call even with debug logging off. This patch makes ``DaphneWriter.write_payload``
send the prepared frame bytes with one ``socket.send`` when nothing is queued for that
socket (plain TCP, no compression, autobahn's own send queue empty), and falls back to the
normal path (Twisted buffers the rest, slow-consumer accounting unchanged) otherwise.
Ordering is kept: the direct path is taken only when nothing is buffered before it.

    python -m bench.experiments.hub_direct_write -b 127.0.0.1 -p 8000   # same args as hub.server
"""

from __future__ import annotations


def install() -> None:
    from hub import transport as T

    original = T.DaphneWriter.write_payload

    def write_payload(self, payload) -> bool:
        proto = self._protocol
        if proto.state != self._open_state:
            return False
        t = proto.transport
        if (t is None or getattr(t, "TLS", False) or proto._perMessageCompress is not None
                or proto.send_queue or not getattr(t, "connected", False)
                or getattr(t, "disconnecting", True) or getattr(t, "_writeDisconnected", True)
                or self.queued_bytes() != 0):
            return original(self, payload)
        data = payload.prepared_for(self._factory).payloadHybi
        try:
            n = t.socket.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            return original(self, payload)
        if n < len(data):
            t.write(data[n:])
            if self.queued_bytes() > self._max:
                self._on_overflow()
        return True

    T.DaphneWriter.write_payload = write_payload


def main() -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    install()
    from hub.server import main as hub_main

    hub_main()


if __name__ == "__main__":
    main()
