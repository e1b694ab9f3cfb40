"""One batch driver per output folder: ``.maestro-batch.lock``.

The driver holds an exclusive lock on the file for the whole job and writes who it is into it
(``{"pid", "host", "started", "command"}``). A second driver on the same folder finds the lock
held and refuses, naming the running job. A driver that was killed (SIGKILL, a crash, a
power cut) leaves the file behind, but not the lock: the operating system releases a
process's file locks when it dies, so the next driver takes the file over and says whose
it was.

The lock is ``fcntl.flock`` on POSIX (also honoured across machines on NFS, where Linux maps
it to a byte-range lock) and ``msvcrt.locking`` on Windows.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from typing import Callable

from engine.errors import OutputError

LOCK_NAME = ".maestro-batch.lock"


class FolderLockedError(OutputError):
    """Another batch driver is running in the output folder."""


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False when another process has it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _describe(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started "
            f"{info.get('started', '?')}" + (f" ({info['command']})" if info.get("command") else ""))


def _read(fd: int) -> dict:
    """The lock file's JSON (``{}`` when empty, ``{"unreadable": True}`` when not JSON).
    On Windows the first byte is the locked one (a space): the JSON starts after it."""
    data = b""
    try:
        os.lseek(fd, 1 if os.name == "nt" else 0, os.SEEK_SET)
        while True:
            part = os.read(fd, 65536)
            if not part:
                break
            data += part
    except OSError:
        return {"unreadable": True}
    try:
        doc = json.loads(data.decode("utf-8", "replace").strip() or "{}")
    except ValueError:
        return {"unreadable": True}
    return doc if isinstance(doc, dict) else {"unreadable": True}


class FolderLock:
    """The lock of one output folder, held from :meth:`acquire` to :meth:`release`.

    Args:
        folder: the batch output folder (must exist).
        log: receives one line when a stale lock of a dead driver is taken over.
    """

    def __init__(self, folder: str, log: Callable[[str], None] | None = None):
        self.path = os.path.join(folder, LOCK_NAME)
        self.log = log or (lambda message: None)
        self._fd: int | None = None
        self.previous: dict | None = None

    def acquire(self) -> "FolderLock":
        """Take the lock or raise :class:`FolderLockedError` naming the running job.

        Raises:
            FolderLockedError: another driver holds it.
            OutputError: the lock file cannot be created (read-only folder...).
        """
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"Cannot create the batch lock {self.path}: {exc}") from exc
            if not _try_lock(fd):
                info = _read(fd)
                os.close(fd)
                raise FolderLockedError(
                    f"Another batch job is running in {os.path.dirname(self.path)}: "
                    f"{_describe(info)}. Wait for it to finish, stop it, or choose another "
                    "output folder.")
            # The holder may have removed the file between our open and our lock: then we
            # hold a lock on a deleted file, and must start again on the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = _read(fd)
            if info:
                self.previous = info
                self.log(f"Took over the lock of a batch job that is no longer running "
                         f"({_describe(info)}); its unfinished blocks are computed again.")
            me = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(os.path.basename(a) if i == 0 else a
                                      for i, a in enumerate(sys.argv))[:500]}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, ((" " if os.name == "nt" else "") + json.dumps(me)).encode("utf-8"))
            os.fsync(fd)
            self._fd = fd
            return self
        raise FolderLockedError(f"Cannot take the batch lock {self.path}: it keeps changing "
                                "(several jobs starting at once?)")

    def release(self) -> None:
        """Remove the lock file and release the lock (removal first, so that a waiting
        driver never locks a file about to disappear unseen: it checks the inode)."""
        if self._fd is None:
            return
        try:
            os.remove(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
