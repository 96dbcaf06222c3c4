"""The per-machine lock: one kb-sync run per agent (and API) on this machine at a time.

The cheap first guard; the stale-plan check covers other writers. The lock file is removed
when the run ends. Removing a lock file is safe only if a run that opened the old file before
the removal notices: after taking the lock, a run checks the path still names the file it
locked, and takes it again if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import GuardRefused, InputError

ATTEMPTS = 5  # a lock file replaced under us this many times in a row: give up


def lock_path(agent_id: str, base_url: str) -> Path:
    where = hashlib.sha256(base_url.encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"kb-sync-{agent_id}-{where}.lock"


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise InputError(
            f"{path}: the lock file cannot be opened ({exc.strerror or exc}); remove it if no "
            "kb-sync run is going on, or set TMPDIR to a folder of your own"
        ) from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def agent_lock(agent_id: str, base_url: str) -> Iterator[None]:
    path = lock_path(agent_id, base_url)
    for _ in range(ATTEMPTS):
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GuardRefused(
                f"another kb-sync run holds the lock for agent {agent_id} ({path}); wait for it"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed it as we opened it: take the new one
    else:
        raise GuardRefused(f"{path}: the lock file keeps being replaced; try again")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a waiting run sees a new file
        os.close(fd)
