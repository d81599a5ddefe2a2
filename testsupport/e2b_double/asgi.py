"""The few raw-ASGI helpers the double's two servers share."""

from __future__ import annotations

import json


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def send_bytes(
    send, status: int, body: bytes, content_type: str = "text/plain", headers=()
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status: int, payload) -> None:
    await send_bytes(send, status, json.dumps(payload).encode(), "application/json")
