"""The live connections of this gateway, so that a drain can reach every one of them."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Drainable(Protocol):
    async def drain(self) -> None:
        """Finish in-flight sends, then close with 1012."""


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: set[Drainable] = set()
        self.draining = False

    def add(self, connection: Drainable) -> None:
        self._connections.add(connection)

    def discard(self, connection: Drainable) -> None:
        self._connections.discard(connection)

    def __contains__(self, connection: object) -> bool:
        return connection in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    async def drain_all(self, timeout: float) -> int:
        """Close every connection with 1012 once its sends are settled; returns how many."""
        self.draining = True
        connections = list(self._connections)
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.drain()) for c in connections], timeout=timeout)
        return len(connections)


connections = ConnectionRegistry()
