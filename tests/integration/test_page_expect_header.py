"""Regression (found by attacking the kiosk as a stranger): the page server answers a foreign Host before its Host rule runs when the request
carries an Expect header. aiohttp's expect handler runs before the middlewares, so
`Expect: 100-continue` gets "HTTP/1.1 100 Continue" (the kiosk asks a rebound page to send its
body) ahead of the 421, and any other Expect value gets aiohttp's own 417 "Unknown Expect: foo"
(echoing the client's text) instead of the 421 the README promises for every request to a
foreign Host; neither 417 is counted among the refusals in /status.

Now: the page's routes answer no Expect header, so every request meets the Host and Origin rules first.

Run: .venv/bin/python -m pytest tests/integration/test_page_expect_header.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import asyncio

from kiosk.devices.screen.web_screen import WebScreen


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), 2)
    finally:
        writer.close()


def test_foreign_host_with_expect_gets_421_first() -> None:
    async def main() -> tuple[bytes, bytes, dict]:
        screen = WebScreen(host="127.0.0.1", port=0, locales=("da_DK",))
        await screen.start()
        try:
            cont = await _raw(
                screen.port,
                b"POST /ack HTTP/1.1\r\nHost: rebound.example\r\nContent-Type: application/json"
                b"\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
            )
            other = await _raw(screen.port, b"GET /status HTTP/1.1\r\nHost: rebound.example\r\nExpect: foo\r\n\r\n")
            return cont, other, screen.complaints
        finally:
            await screen.stop()

    cont, other, complaints = asyncio.run(main())
    print("Expect: 100-continue ->", cont[:60])
    print("Expect: other        ->", other.split(b"\r\n", 1)[0], other[-40:])
    print("refusals counted     ->", complaints)
    assert cont.startswith(b"HTTP/1.1 421"), cont[:60]
    assert other.startswith(b"HTTP/1.1 421"), other[:60]
