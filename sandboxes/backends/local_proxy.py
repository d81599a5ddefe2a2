"""The egress proxy of a local sandbox under `network_policy=allowlist`.

It runs inside the sandbox's network namespace as its own host uid (not the sandbox's), and
is the only process there that nftables lets out (`meta skuid`). The sandbox finds it through
HTTP_PROXY / HTTPS_PROXY, which pip, npm, git, curl and Chromium all honour.

Per request it checks two things, in this order:
1. the host name asked for is on the allowlist (`pypi.org` matches itself only,
   `*.example.com` matches every subdomain of example.com but not example.com);
2. every address that name resolves to is outside the blocked ranges (loopback, private,
   link-local, the host's own addresses: the same list nftables enforces, which would refuse
   them anyway), and it connects to the address it checked, so a name that resolves
   differently the second time (DNS rebinding) changes nothing.

`CONNECT host:port` (https, git, npm, pip) is tunnelled; an absolute-form plain http request
(`GET http://host/path`) is forwarded once with `Connection: close`. Anything else is a 400.
A refusal is a 403 whose body says why, which pip and npm print.

Standard library only, and one file: the backend starts it with the system Python and
`-I`, feeding this source and the configuration on stdin, so no user input ever reaches
its argv or environment and it needs no file the sandbox could touch.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import sys

HEAD_LIMIT = 16 << 10
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
REASONS = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}


def host_allowed(host: str, allowlist) -> bool:
    """Whether `host` (a name from a request) is on the allowlist."""
    host = host.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def address_blocked(address: str, networks) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `host` -> (host, port); ValueError if malformed."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = target.rpartition(":") if ":" in target else (target, "", "")
    number = int(port) if port else default_port
    if not host or not 0 < number < 65536:
        raise ValueError(target)
    return host, number


class Proxy:
    def __init__(self, *, allow, blocked):
        self.allow = tuple(allow)
        self.blocked = tuple(ipaddress.ip_network(n) for n in blocked)

    async def handle(self, reader, writer):
        try:
            await self._handle(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            return await self._refuse(writer, 400, "request head too large")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return await self._refuse(writer, 400, "malformed request line")
        method, target, version = parts
        if method == "CONNECT":
            tunnel, default_port, rest = True, 443, b""
        elif target.lower().startswith("http://"):
            tunnel, default_port = False, 80
            authority, slash, path = target[7:].partition("/")
            target = authority
            kept = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("proxy-", "connection:"))
            ]
            rest = "\r\n".join(
                [f"{method} {slash}{path} {version}", *kept, "Connection: close", "", ""]
            ).encode("latin-1")
        else:
            return await self._refuse(writer, 400, "only CONNECT and http:// requests")
        try:
            host, port = split_host_port(target, default_port)
        except ValueError:
            return await self._refuse(writer, 400, "malformed host")
        if not host_allowed(host, self.allow):
            return await self._refuse(writer, 403, f"{host} is not in the agent's allowlist")
        upstream = await self._connect(host, port)
        if isinstance(upstream, str):
            return await self._refuse(writer, 403 if "blocked" in upstream else 502, upstream)
        up_reader, up_writer = upstream
        log(f"allowed {method} {host}:{port}")
        if tunnel:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(rest)
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _connect(self, host, port):
        """(reader, writer) to an allowed address of host, or a sentence saying why not."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return f"{host} does not resolve"
        addresses = [info[4][0] for info in infos]
        allowed = [a for a in addresses if not address_blocked(a, self.blocked)]
        if not allowed:
            return f"{host} resolves to a blocked address"
        for address in dict.fromkeys(allowed):
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(address, port), CONNECT_TIMEOUT
                )
            except (TimeoutError, OSError):
                continue
        return f"cannot connect to {host}:{port}"

    async def _refuse(self, writer, status, reason):
        log(f"refused ({status}): {reason}")
        body = f"Agent Studio egress proxy: {reason}.\n".encode()
        writer.write(
            f"HTTP/1.1 {status} {REASONS[status]}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()


async def pipe(reader, writer):
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()


def log(message: str) -> None:
    print(f"egress-proxy: {message}", file=sys.stderr, flush=True)


async def serve(config: dict) -> None:
    proxy = Proxy(allow=config["allow"], blocked=config["blocked"])
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", config["port"], limit=HEAD_LIMIT)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(config_json: str) -> None:
    asyncio.run(serve(json.loads(config_json)))
