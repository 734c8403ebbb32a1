"""A fast asyncio webhook receiver for benchmarks: answers at once (or after a delay).

    python -m bench.receiver --port 0 --delay-ms 0 --port-file /tmp/port

Records (webhook-id, arrival time, the `sent_at` field of the event data if present) and serves
them as JSON on GET /records; GET /count gives how many arrived; POST anything else is a webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

RECORDS: list[tuple[str, float, float | None]] = []


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            now = time.time()
            if method == "GET":
                payload = (
                    json.dumps(RECORDS)
                    if path == "/records"
                    else json.dumps({"count": len(RECORDS)})
                ).encode()
            else:
                sent_at = None
                if b'"sent_at"' in body:
                    sent_at = json.loads(body)["data"].get("sent_at")
                RECORDS.append((headers.get("webhook-id", ""), now, sent_at))
                if delay:
                    await asyncio.sleep(delay)
                payload = b"{}"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, delay_ms: float, port_file: str | None) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, delay_ms / 1000), "127.0.0.1", port, backlog=1024
    )
    actual = server.sockets[0].getsockname()[1]
    if port_file:
        Path(port_file).write_text(str(actual))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay_ms, args.port_file))
