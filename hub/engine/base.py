"""Kept for older imports: the records live in ``hub.engine.contracts``."""

from hub.engine.contracts import ChannelInfo, ClientInfo, ProcessStats

__all__ = ["ChannelInfo", "ClientInfo", "ProcessStats"]
