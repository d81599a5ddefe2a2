"""Test hosts for the sandbox network tests: machines of our own, in network namespaces.

Egress rules are never tested against addresses outside this machine. `make_test_hosts()` makes
one namespace with a veth pair to the host, gives it an address in each range a sandbox must
not reach (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16) plus one it may reach under
`open` (198.18/15, which no rule blocks), and serves TCP port 8080 on all of them. The host
side has an address only in 10.77.0.0/24; the other addresses are routes, so that the host's
own networks (which sandboxes never reach either) do not swallow the reachable one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time

BLOCKED_HOSTS = ("10.77.0.2", "172.31.77.2", "192.168.77.2", "100.64.77.2", "169.254.77.2")
OPEN_HOST = "198.18.77.2"
PORT = 8080
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
SERVER = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 8080)); s.listen(64)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'test-host\\n'); c.close()\n"
)
# Prints {"host:port": "open" | the error's errno name} for each argument.
PROBE = (
    "import errno, json, socket, sys\n"
    "out = {}\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        socket.create_connection((host.strip('[]'), int(port)), timeout=3).close()\n"
    "        out[target] = 'open'\n"
    "    except OSError as exc:\n"
    "        out[target] = errno.errorcode.get(exc.errno, 'timeout')\n"
    "print(json.dumps(out))\n"
)


# How a refused connection looks from inside: nftables' reject (EHOSTUNREACH), a local
# drop (EPERM), or nothing listening on the namespace's own address (ECONNREFUSED).
REFUSED = {"EHOSTUNREACH", "EPERM", "EACCES", "ECONNREFUSED", "ENETUNREACH"}


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def make_test_hosts():
    """Yield once the test hosts answer on PORT; remove them (namespace, veth, routes)."""
    tag = f"{os.getpid() % 100000}"
    ns, host_if, peer_if = f"as-testhosts-{tag}", f"asth{tag}", f"astp{tag}"
    server = None
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", ns)
        _ip("addr", "add", "10.77.0.1/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", peer_if, "up")
        for address in (*BLOCKED_HOSTS, OPEN_HOST):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", peer_if)
            if address != "10.77.0.2":
                _ip("route", "add", f"{address}/32", "dev", host_if)
        _ip("-n", ns, "route", "add", "default", "via", "10.77.0.1")
        server = subprocess.Popen(
            [IP, "netns", "exec", ns, "/usr/bin/python3", "-c", SERVER],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while probe_from_host(OPEN_HOST) != "open":
            assert time.monotonic() < deadline, "the test hosts did not come up"
            time.sleep(0.05)
        yield
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run([IP, "link", "delete", host_if], capture_output=True, timeout=10)
        subprocess.run([IP, "netns", "delete", ns], capture_output=True, timeout=10)


def probe_from_host(host: str, port: int = PORT) -> str:
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "open"
    except OSError as exc:
        return type(exc).__name__


def host_loopback_ports() -> dict[str, int]:
    """Every TCP port listening on the host's loopback (or on all addresses), as the
    `host:port` a probe from a sandbox would use, mapped to the port."""
    found = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                local, _, state = line.split()[1:4]
                address, port = local.split(":")
                if state != "0A":
                    continue
                port = int(port, 16)
                if not v6 and (address == "00000000" or address.endswith("7F")):
                    found[f"127.0.0.1:{port}"] = port
                elif v6 and address in ("0" * 32, "0" * 24 + "01000000"):
                    found[f"[::1]:{port}"] = port
    return found


def parse_probe(stdout: str) -> dict[str, str]:
    return json.loads(stdout.strip().splitlines()[-1])
