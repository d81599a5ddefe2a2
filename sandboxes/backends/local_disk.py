"""The disk quota of a local sandbox: its workspace and HOME live on a file system of their own.

Each sandbox gets a sparse ext4 image of SANDBOX_DISK_MB (`disk.img` in its directory),
loop-mounted nosuid,nodev at `<sandbox>/fs`; /workspace and /home/agent are directories
on it. A sandbox that fills it gets ENOSPC inside, and the host's file system only ever
holds what was written (the image is sparse). Why an image and not quotas: project quotas
need the host file system mounted with prjquota (not the case on the studio's machines,
nor on most hosts), while a loop mount needs only root, util-linux and e2fsprogs, which
every Debian has. mkfs of a 1 GiB sparse image takes ~50 ms here.

With a size of 0 the directories are plain ones on the host's disk (no quota).
"""

from __future__ import annotations

import os
import subprocess
import time

from sandboxes.backends.base import BackendError
from sandboxes.backends.local_launch import HOST_ENV, host_binary


def _run(argv: list[str], *, what: str) -> None:
    result = subprocess.run(argv, env=HOST_ENV, capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise BackendError(f"Could not {what} for the sandbox: {result.stderr.strip()[-300:]}")


def create(*, image: str, mountpoint: str, size_bytes: int, uid: int) -> None:
    """Make and mount the sandbox's file system, its root owned by `uid` (mode 0700)."""
    os.makedirs(mountpoint, exist_ok=True)
    if size_bytes <= 0:
        os.chown(mountpoint, uid, uid)
        os.chmod(mountpoint, 0o700)
        return
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size_bytes)
    finally:
        os.close(fd)
    _run(
        [
            host_binary("mkfs.ext4"),
            *("-q", "-F", "-m", "0", "-O", "^has_journal"),
            *("-E", f"root_owner={uid}:{uid},lazy_itable_init=1"),
            image,
        ],
        what="format the disk",
    )
    _run(
        [host_binary("mount"), "-o", "loop,nosuid,nodev,noatime", image, mountpoint],
        what="mount the disk",
    )
    os.chmod(mountpoint, 0o700)


def full(mountpoint: str) -> bool:
    """Whether the sandbox's disk has (almost) no room left."""
    try:
        st = os.statvfs(mountpoint)
    except OSError:
        return False
    return os.path.ismount(mountpoint) and st.f_bavail * st.f_frsize < 64 * 1024


def remove(*, image: str, mountpoint: str, timeout: float = 5.0) -> None:
    """Unmount (the loop device goes with it) and delete the image. Processes must be gone."""
    deadline = time.monotonic() + timeout
    while os.path.ismount(mountpoint):
        result = subprocess.run(
            [host_binary("umount"), mountpoint], env=HOST_ENV, capture_output=True, timeout=30
        )
        if result.returncode == 0:
            break
        if time.monotonic() > deadline:
            # Still busy: detach it now, the kernel frees it when the last user goes.
            subprocess.run([host_binary("umount"), "--lazy", mountpoint], env=HOST_ENV, timeout=30)
            break
        time.sleep(0.05)
    if os.path.exists(image):
        os.unlink(image)
