"""envd for double sandboxes: the Connect RPC services the e2b package ships the server
classes for, plus `GET/POST /files` and `/health`.

One server stands for E2B's sandbox edge (`https://sandbox.e2b.app`): like the real one it
routes each request by the `E2b-Sandbox-Id` header, answers 502 "... was not found" for a
sandbox that is gone or paused, and envd checks `X-Access-Token`. A signed file URL
(`download_url`/`upload_url`) carries no headers, as a browser's request would not: E2B routes
it by host name, the double to the sandbox whose access token verifies its signature.

envd runs each request as the user its `Authorization: Basic <user:>` header names (the
template's default user without one); relative paths are relative to that user's home, and
commands start in the template's WORKDIR. File metadata is stored as `user.e2b.*` extended
attributes, as envd does, so metadata set from inside the sandbox shows up too.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import json
import os
import posixpath
import shutil
import signal
import stat as stat_mod
import time
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.envd.client_shared import ENVD_JSON_CODEC
from e2b.envd.filesystem import filesystem_pb
from e2b.envd.filesystem.filesystem_connect import Filesystem, FilesystemASGIApplication
from e2b.envd.process import process_pb
from e2b.envd.process.process_connect import Process, ProcessASGIApplication
from protobuf import Oneof

from . import watch
from .asgi import read_body, send_bytes, send_json
from .sandbox import USERS

XATTR_PREFIX = "user.e2b."
METADATA_HEADER = "x-metadata-"


def _user(headers) -> str:
    """The user an envd request names in `Authorization: Basic base64(user:)`, or ""."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return ""
    try:
        return base64.b64decode(value).decode().partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return ""


def _sandbox(double, headers):
    sbx = double.sandboxes.get(headers.get("e2b-sandbox-id", ""))
    if sbx is None or sbx.state != "running":
        raise ConnectError(Code.UNAVAILABLE, "The sandbox was not found")
    user = _user(headers)
    if user and user not in USERS:
        raise ConnectError(Code.INVALID_ARGUMENT, f"error looking up user '{user}'")
    return sbx


def _absolute(path: str, home: str = "/home/user") -> str:
    return posixpath.normpath(posixpath.join(home, path or "."))


def _metadata(host) -> dict[str, str]:
    """The `user.e2b.*` extended attributes of a file, prefix stripped."""
    found = {}
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return found
    for name in names:
        if name.startswith(XATTR_PREFIX):
            with contextlib.suppress(OSError):
                value = os.getxattr(host, name, follow_symlinks=False).decode()
                found[name[len(XATTR_PREFIX) :]] = value
    return found


def _set_metadata(host, metadata: dict[str, str]) -> None:
    """Replace a file's metadata (an overwrite without metadata clears the old one)."""
    for name in _metadata(host):
        with contextlib.suppress(OSError):
            os.removexattr(host, XATTR_PREFIX + name)
    for key, value in metadata.items():
        os.setxattr(host, XATTR_PREFIX + key, value.encode())


def _signature(path: str, operation: str, user: str, token: str, expiration: str) -> str:
    raw = f"{path}:{operation}:{user}:{token}" + (f":{expiration}" if expiration else "")
    digest = hashlib.sha256(raw.encode()).digest()
    return "v1_" + base64.b64encode(digest).rstrip(b"=").decode()


class ProcessService(Process):
    def __init__(self, double):
        self.double = double

    def _proc(self, sbx, selector):
        for proc in sbx.procs.values():
            if (selector.selector.field == "pid" and proc.pid == selector.selector.value) or (
                selector.selector.field == "tag" and proc.tag == selector.selector.value
            ):
                return proc
        raise ConnectError(Code.NOT_FOUND, "process not found")

    async def start(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        user = _user(ctx.request_headers)
        config = request.process
        if config.has_field("cwd") and config.cwd:
            cwd = _absolute(config.cwd, sbx.home(user))
            host = sbx.host_path(sbx.resolve(cwd))
            if host is None or not host.is_dir():
                raise ConnectError(Code.INVALID_ARGUMENT, f"cwd '{cwd}' does not exist")
            config.cwd = cwd
        proc = await sbx.spawn(config, user=user, stdin=bool(request.stdin))
        if request.has_field("tag"):
            proc.tag = request.tag
        start = process_pb.ProcessEvent.StartEvent(pid=proc.pid)
        yield process_pb.StartResponse(event=process_pb.ProcessEvent(event=Oneof("start", start)))
        async for event in proc.follow(0):
            yield process_pb.StartResponse(event=event)

    async def connect(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        proc = self._proc(sbx, request.process)
        start = process_pb.ProcessEvent.StartEvent(pid=proc.pid)
        yield process_pb.ConnectResponse(event=process_pb.ProcessEvent(event=Oneof("start", start)))
        async for event in proc.follow(len(proc.events)):
            yield process_pb.ConnectResponse(event=event)

    async def list(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        return process_pb.ListResponse(
            processes=[
                process_pb.ProcessInfo(config=p.config, pid=p.pid, tag=p.tag)
                for p in sbx.procs.values()
            ]
        )

    async def send_signal(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        proc = self._proc(sbx, request.process)
        sig = signal.SIGTERM if request.signal == process_pb.Signal.SIGTERM else signal.SIGKILL
        proc.kill(sig)
        return process_pb.SendSignalResponse()

    async def send_input(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        proc = self._proc(sbx, request.process)
        if proc.popen.stdin is None:
            raise ConnectError(Code.FAILED_PRECONDITION, "stdin is not enabled")
        proc.popen.stdin.write(request.input.input.value)
        await proc.popen.stdin.drain()
        return process_pb.SendInputResponse()

    async def close_stdin(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        proc = self._proc(sbx, request.process)
        if proc.popen.stdin is not None:
            proc.popen.stdin.close()
        return process_pb.CloseStdinResponse()


def _entry(sbx, path: str) -> filesystem_pb.EntryInfo:
    """EntryInfo for a sandbox path whose parent directories are already resolved. A
    symlink is described by what it points to, with its resolved target, as envd does."""
    host = sbx.host_path(path)
    if host is None or not (host.exists() or host.is_symlink()):
        raise ConnectError(Code.NOT_FOUND, f"path '{path}' does not exist")
    st = host.lstat()
    is_link = stat_mod.S_ISLNK(st.st_mode)
    target_path = sbx.resolve(path) if is_link else path
    target = sbx.host_path(target_path) if is_link else host
    is_dir = target is not None and target.is_dir()
    entry = filesystem_pb.EntryInfo(
        name=posixpath.basename(path) or "/",
        type=filesystem_pb.FileType.DIRECTORY if is_dir else filesystem_pb.FileType.FILE,
        path=path,
        size=st.st_size,
        mode=stat_mod.S_IMODE(st.st_mode),
        permissions=stat_mod.filemode(st.st_mode),
        owner="user",
        group="user",
        metadata=_metadata(host),
    )
    if is_link:
        entry.symlink_target = target_path
    return entry


def _home(sbx, ctx) -> str:
    return sbx.home(_user(ctx.request_headers))


def _parent_resolved(sbx, path: str, home: str) -> str:
    path = _absolute(path, home)
    return posixpath.join(sbx.resolve(posixpath.dirname(path)), posixpath.basename(path))


class FilesystemService(Filesystem):
    def __init__(self, double):
        self.double = double

    async def stat(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        path = _parent_resolved(sbx, request.path, _home(sbx, ctx))
        return filesystem_pb.StatResponse(entry=_entry(sbx, path))

    async def list_dir(self, request, ctx):
        """Depth-first, each directory's entries by name, as envd walks."""
        sbx = _sandbox(self.double, ctx.request_headers)
        path = sbx.resolve(_absolute(request.path, _home(sbx, ctx)))
        host = sbx.host_path(path)
        if host is None or not host.exists():
            raise ConnectError(Code.NOT_FOUND, f"path '{request.path}' does not exist")
        if not host.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"path '{request.path}' is not a directory")
        entries: list = []

        def walk(directory: str, level: int) -> None:
            for name in sorted(os.listdir(sbx.host_path(directory))):
                entry = _entry(sbx, posixpath.join(directory, name))
                entries.append(entry)
                is_dir = entry.type == filesystem_pb.FileType.DIRECTORY
                if is_dir and not entry.symlink_target and level < max(request.depth, 1):
                    walk(entry.path, level + 1)

        walk(path, 1)
        return filesystem_pb.ListDirResponse(entries=entries)

    async def make_dir(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        path = _parent_resolved(sbx, request.path, _home(sbx, ctx))
        host = sbx.host_path(path)
        if host is None:
            raise ConnectError(Code.PERMISSION_DENIED, f"cannot create '{path}'")
        if host.exists():
            raise ConnectError(Code.ALREADY_EXISTS, f"'{path}' already exists")
        missing = [path]
        while (parent := posixpath.dirname(missing[-1])) != missing[-1]:
            parent_host = sbx.host_path(parent)
            if parent_host is None or parent_host.exists():
                break
            missing.append(parent)
        host.mkdir(parents=True)
        for created in reversed(missing):
            watch.notify(sbx, created, (watch.CREATE,))
        return filesystem_pb.MakeDirResponse(entry=_entry(sbx, path))

    async def remove(self, request, ctx):
        """Removing what does not exist succeeds, as with envd (`rm -rf`)."""
        sbx = _sandbox(self.double, ctx.request_headers)
        path = _parent_resolved(sbx, request.path, _home(sbx, ctx))
        host = sbx.host_path(path)
        if host is None:
            raise ConnectError(Code.PERMISSION_DENIED, f"cannot remove '{request.path}'")
        existed = host.exists() or host.is_symlink()
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
        elif existed:
            host.unlink()
        if existed:
            watch.notify(sbx, path, (watch.REMOVE,))
        return filesystem_pb.RemoveResponse()

    async def move(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        home = _home(sbx, ctx)
        source = sbx.host_path(_parent_resolved(sbx, request.source, home))
        destination_path = _parent_resolved(sbx, request.destination, home)
        destination = sbx.host_path(destination_path)
        if source is None or not source.exists() or destination is None:
            raise ConnectError(Code.NOT_FOUND, f"path '{request.source}' does not exist")
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)
        watch.notify(sbx, _parent_resolved(sbx, request.source, home), (watch.RENAME,))
        watch.notify(sbx, destination_path, (watch.CREATE,))
        return filesystem_pb.MoveResponse(entry=_entry(sbx, destination_path))

    async def create_watcher(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        path = sbx.resolve(_absolute(request.path, _home(sbx, ctx)))
        host = sbx.host_path(path)
        if host is None or not host.exists():
            raise ConnectError(Code.NOT_FOUND, f"path '{request.path}' does not exist")
        if not host.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"path '{request.path}' is not a directory")
        watcher = watch.Watcher(path, request.recursive, request.include_entry)
        watcher.snapshot = watch.take_snapshot(watcher, host)
        sbx.watchers[watcher.id] = watcher
        return filesystem_pb.CreateWatcherResponse(watcher_id=watcher.id)

    async def get_watcher_events(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        watcher = sbx.watchers.get(request.watcher_id)
        if watcher is None:
            raise ConnectError(Code.NOT_FOUND, f"watcher '{request.watcher_id}' not found")
        host = sbx.host_path(watcher.path)
        current = watch.take_snapshot(watcher, host) if host is not None else {}
        found = watcher.events + watch.diff(watcher.snapshot, current)
        watcher.events, watcher.snapshot = [], current
        events = []
        for name, kind in found:
            event = filesystem_pb.FilesystemEvent(name=name, type=kind)
            if watcher.include_entry:
                with contextlib.suppress(ConnectError):
                    event.entry = _entry(sbx, posixpath.join(watcher.path, name))
            events.append(event)
        return filesystem_pb.GetWatcherEventsResponse(events=events)

    async def remove_watcher(self, request, ctx):
        sbx = _sandbox(self.double, ctx.request_headers)
        sbx.watchers.pop(request.watcher_id, None)
        return filesystem_pb.RemoveWatcherResponse()


class EnvdEdge:
    """ASGI app: the sandbox edge plus envd of every double sandbox."""

    def __init__(self, double):
        self.double = double
        codecs = [ENVD_JSON_CODEC]
        self.process = ProcessASGIApplication(ProcessService(double), codecs=codecs)
        self.filesystem = FilesystemASGIApplication(FilesystemService(double), codecs=codecs)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        path = scope["path"]
        signed = path == "/files" and "signature" in query
        sandbox_id = headers.get("e2b-sandbox-id", "")
        if signed and not sandbox_id:
            sandbox_id = self._signer(query, scope["method"])
        sbx = self.double.sandboxes.get(sandbox_id)
        if sbx is None or sbx.state != "running":
            message = f"The sandbox {sandbox_id} was not found"
            return await send_json(send, 502, {"code": 502, "message": message})
        if signed:
            refused = _check_signature(sbx, query, scope["method"])
            if refused:
                return await send_json(send, 401, {"code": 401, "message": refused})
            headers["authorization"] = (
                "Basic " + base64.b64encode(f"{query.get('username', '')}:".encode()).decode()
            )
        elif headers.get("x-access-token") != sbx.access_token:
            message = "unauthorized access, please provide a valid access token"
            return await send_json(send, 401, {"code": 401, "message": message})
        if path.startswith(self.process.path + "/"):
            return await self.process(scope, receive, send)
        if path.startswith(self.filesystem.path + "/"):
            return await self.filesystem(scope, receive, send)
        if path == "/health":
            return await send_bytes(send, 204, b"")
        if path == "/files":
            user = _user(headers) or query.get("username", "")
            if user and user not in USERS:
                message = f"error looking up user '{user}'"
                return await send_json(send, 400, {"code": 400, "message": message})
            home = sbx.home(user)
            if scope["method"] == "GET":
                return await self._download(send, sbx, query, home)
            if scope["method"] == "POST":
                return await self._upload(receive, send, sbx, query, headers, home)
        await send_json(send, 404, {"code": 404, "message": "not found"})

    def _signer(self, query, method) -> str:
        """The sandbox whose access token made this URL's signature ("" if none did)."""
        for sbx in list(self.double.sandboxes.values()):
            if _check_signature(sbx, query, method) != "invalid signature":
                return sbx.sandbox_id
        return ""

    async def _download(self, send, sbx, query, home):
        path = sbx.resolve(_absolute(query.get("path", ""), home))
        host = sbx.host_path(path) or sbx.readonly_host_path(path)
        if host is None or not host.exists():
            return await send_json(send, 404, {"code": 404, "message": f"'{path}' not found"})
        if host.is_dir():
            message = f"'{path}' is a directory"
            return await send_json(send, 400, {"code": 400, "message": message})
        await send_bytes(send, 200, host.read_bytes(), "application/octet-stream")

    async def _upload(self, receive, send, sbx, query, headers, home):
        body = await read_body(receive)
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        metadata = {
            k[len(METADATA_HEADER) :].lower(): v
            for k, v in headers.items()
            if k.startswith(METADATA_HEADER)
        }
        content_type = headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            head = f"Content-Type: {content_type}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + body)
            parts = list(message.iter_parts())
            files = [
                (query["path"] if len(parts) == 1 and "path" in query else p.get_filename(),
                 p.get_payload(decode=True) or b"")
                for p in parts
            ]  # fmt: skip
        else:
            files = [(query.get("path", ""), body)]
        written = []
        for name, data in files:
            path = sbx.resolve(_absolute(name, home))
            host = sbx.host_path(path)
            if host is None or (host.exists() and host.is_dir()):
                message = f"cannot write '{path}': permission denied or a directory"
                return await send_json(send, 403, {"code": 403, "message": message})
            host.parent.mkdir(parents=True, exist_ok=True)
            new = not host.exists()
            host.write_bytes(data)
            _set_metadata(host, metadata)
            watch.notify(
                sbx, path, (watch.CREATE, watch.WRITE, watch.CHMOD) if new else (watch.WRITE,)
            )
            entry = {"name": posixpath.basename(path), "type": "file", "path": path}
            if metadata:
                entry["metadata"] = metadata
            written.append(entry)
        await send_bytes(send, 200, json.dumps(written).encode(), "application/json")


def _check_signature(sbx, query, method) -> str:
    """ "" if the URL's signature is this sandbox's and still valid, else why not."""
    operation = "write" if method == "POST" else "read"
    expiration = query.get("signature_expiration", "")
    expected = _signature(
        query.get("path", ""), operation, query.get("username", ""), sbx.access_token, expiration
    )
    if not hmac.compare_digest(expected, query.get("signature", "")):
        return "invalid signature"
    if expiration and int(expiration) < time.time():
        return "signature is already expired"
    return ""
