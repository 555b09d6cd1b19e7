"""The guarded servers' listening sockets hold a burst of connections while the loop is busy.

RE-ZIP can deliver a few hundred webhooks at once to a shop's service. A connection the kernel
cannot queue (the listen backlog is full) has its SYN dropped, and its sender waits a second to
send it again: with a backlog of 128, one worker and 200 deliveries at once, the slowest took
1.1 s. Here nothing accepts at all, and 400 connections must still be established by the kernel."""

from __future__ import annotations

import asyncio
import logging
import select
import socket

from kiosk.devices.screen.complaints import Complaints
from kiosk.devices.screen.connections import ConnectionGuard

BURST = 400


async def _established_while_nobody_accepts() -> int:
    guard = ConnectionGuard(asyncio.Protocol, Complaints(logging.getLogger("test")), cap=16)
    port = await guard.listen("127.0.0.1", 0)
    for task in guard.accepting:  # the loop is "busy": nothing is accepted
        task.cancel()
    await asyncio.gather(*guard.accepting, return_exceptions=True)
    clients = []
    try:
        for _ in range(BURST):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            clients.append(client)
        pending, established = set(clients), 0
        poller = select.poll()
        for client in clients:
            poller.register(client, select.POLLOUT)
        deadline = asyncio.get_running_loop().time() + 3
        while pending and asyncio.get_running_loop().time() < deadline:
            for fd, _ in poller.poll(100):
                client = next(c for c in pending if c.fileno() == fd)
                poller.unregister(fd)
                pending.discard(client)
                established += client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        return established
    finally:
        for client in clients:
            client.close()
        await guard.close()


def test_a_burst_of_connections_waits_in_the_backlog() -> None:
    assert asyncio.run(_established_while_nobody_accepts()) == BURST
