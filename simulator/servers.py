"""What every simulated Modbus server needs: the port it actually got.

Tests ask for port 0 so no two runs collide; the farm and the relay board both
then read the port the OS chose from the listening socket.
"""

from __future__ import annotations

import asyncio

from pymodbus.server import ModbusTcpServer


def listening_port(server: ModbusTcpServer) -> int:
    """The port a started TCP server listens on."""
    listener = server.transport
    assert isinstance(listener, asyncio.Server)
    return int(listener.sockets[0].getsockname()[1])
