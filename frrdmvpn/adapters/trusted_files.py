"""Files the configuration names, read by root only if nobody but root could have written them.

Whoever may configure frrdmvpn (an administrator over the API, perhaps from another host)
names files that root then reads: a trustpoint's certificate, private key and CA
certificate (charon gets their contents over VICI; it opens no configured path itself),
and frrdmvpnd's own TLS files. :func:`read` opens such a path only if

* it is a regular file — never a device (``/dev/zero`` would grow the daemon without end,
  a tape or serial device acts on open), a FIFO (would block the apply that holds the
  datastore lock) or a socket; the type is read from an ``O_PATH`` descriptor, which opens
  nothing, before the file is opened ``O_NONBLOCK``;
* of 1 to :data:`MAX_BYTES` bytes (charon takes a file as one VICI value);
* owned by root (or by one of ``owners``) and writable by nobody else; a private key
  (``secret``) is also unreadable by others (0600 or 0640);
* and found through directories and symbolic links only root could have changed: the path
  is walked from ``/`` one component at a time with ``O_NOFOLLOW``, each directory owned by
  root and writable by nobody else (a sticky directory such as ``/tmp`` only when the entry
  in it is root's), each symbolic link owned by root and followed by hand (at most 40).
  A symbolic link root made (``/etc/ssl/certs/*.pem``, ``/var/run``) is fine; one another
  user made, or could replace, is refused.

Every refusal is a :class:`UntrustedFileError` whose message names the file and the reason,
never anything read from it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections import deque
from collections.abc import Collection, Iterator
from pathlib import Path

MAX_BYTES = 65535  # a VICI value has two length bytes
MAX_LINKS = 40  # symbolic links followed in one path, like Linux's MAXSYMLINKS
ROOT_ONLY = frozenset({0})
_WRITABLE = stat.S_IWGRP | stat.S_IWOTH

_TYPES = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


class UntrustedFileError(ValueError):
    """A configured file that is not read: ``what path reason``."""

    def __init__(self, what: str, path: str, reason: str) -> None:
        super().__init__(f"{what} {path} {reason}")
        self.what, self.path, self.reason = what, path, reason


def _user(uid: int) -> str:
    with contextlib.suppress(KeyError):
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    return f"uid {uid}"


def _mode(st: os.stat_result) -> str:
    return f"mode {stat.S_IMODE(st.st_mode):04o}"


def _opath(name: str, dir_fd: int, *, directory: bool = False) -> int:
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    return os.open(name, flags, dir_fd=dir_fd)


class _Walk:
    """One path, walked from ``/``; ``fail`` raises with the file's own label."""

    def __init__(self, what: str, path: str, owners: Collection[int]) -> None:
        self.what, self.path, self.owners = what, path, owners
        self.fds: list[int] = []

    def fail(self, reason: str) -> UntrustedFileError:
        return UntrustedFileError(self.what, self.path, reason)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)

    def trusted(self, fd: int, shown: str) -> int:
        """``fd``, a directory on the way, if only root can change what is in it (a sticky
        one may be writable: the caller checks that the entry in it is root's)."""
        st = os.fstat(fd)
        if st.st_uid not in self.owners:
            raise self.fail(f"lies in {shown}, which is owned by {_user(st.st_uid)}, not root")
        if st.st_mode & _WRITABLE and not st.st_mode & stat.S_ISVTX:
            raise self.fail(
                f"lies in {shown}, which is writable by group or others "
                f"({_mode(st)}): only root may write there"
            )
        return fd

    def enter(self, name: str, dir_fd: int, shown: str) -> int:
        """The directory ``name`` in ``dir_fd`` as an O_PATH descriptor, if trusted."""
        try:
            fd = _opath(name, dir_fd, directory=True)
        except NotADirectoryError:
            raise self.fail(f"goes through {shown}, which is not a directory") from None
        self.fds.append(fd)
        return self.trusted(fd, shown)

    def resolve(self) -> tuple[int, str]:
        """The descriptor of the directory holding the file, and the file's name in it."""
        if not self.path.startswith("/"):
            raise self.fail("is not an absolute path")
        parts: deque[str] = deque(self.path.split("/"))
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fds.append(root)
        here, shown, links = self.trusted(root, "/"), "/", 0
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue
            try:
                st = os.stat(name, dir_fd=here, follow_symlinks=False)
            except FileNotFoundError:
                raise self.fail("does not exist") from None
            except PermissionError as exc:
                raise self.fail(f"cannot be read: {exc.strerror}") from None
            here_st = os.fstat(here)
            entry = os.path.normpath(os.path.join(shown, name))
            if here_st.st_mode & _WRITABLE and st.st_uid not in self.owners:
                raise self.fail(
                    f"lies in {shown}, which others may write, and {entry} is "
                    f"owned by {_user(st.st_uid)}, not root"
                )
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise self.fail(f"goes through more than {MAX_LINKS} symbolic links")
                if st.st_uid not in self.owners:
                    raise self.fail(
                        f"goes through the symbolic link {entry}, owned by "
                        f"{_user(st.st_uid)}, not root"
                    )
                target = os.readlink(name, dir_fd=here)
                if target.startswith("/"):
                    here, shown = root, "/"
                parts.extendleft(reversed(target.split("/")))
                continue
            if not parts:
                return here, name
            here, shown = self.enter(name, here, entry), entry
        raise self.fail("names a directory, not a file")

    def check(self, dir_fd: int, name: str, secret: bool, max_bytes: int) -> os.stat_result:
        """The file's status if it may be read (from an O_PATH descriptor: nothing opened)."""
        fd = _opath(name, dir_fd)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFREG:
            raise self.fail(f"is not a regular file: it is {_TYPES.get(kind, 'something else')}")
        if st.st_uid not in self.owners:
            raise self.fail(f"is owned by {_user(st.st_uid)}, not root")
        if st.st_mode & _WRITABLE:
            raise self.fail(f"is writable by group or others ({_mode(st)}): only root may write it")
        if secret and st.st_mode & stat.S_IRWXO:
            raise self.fail(f"is readable by others ({_mode(st)}): a private key is 0600 or 0640")
        if st.st_size > max_bytes:
            raise self.fail(f"has {st.st_size} bytes: at most {max_bytes}")
        if st.st_size == 0:
            raise self.fail("is empty")
        return st


@contextlib.contextmanager
def _walked(what: str, path: str, owners: Collection[int]) -> Iterator[tuple[_Walk, int, str]]:
    walk = _Walk(what, path, owners)
    try:
        try:
            dir_fd, name = walk.resolve()
        except OSError as exc:  # ELOOP, EACCES ... on the way
            raise walk.fail(f"cannot be read: {exc.strerror}") from None
        yield walk, dir_fd, name
    finally:
        walk.close()


def check(
    path: str | Path,
    what: str,
    *,
    secret: bool = False,
    max_bytes: int = MAX_BYTES,
    owners: Collection[int] = ROOT_ONLY,
) -> None:
    """Raise :class:`UntrustedFileError` unless :func:`read` would read ``path`` (nothing
    is opened for reading: for validation)."""
    with _walked(what, str(path), owners) as (walk, dir_fd, name):
        walk.check(dir_fd, name, secret, max_bytes)


def read(
    path: str | Path,
    what: str,
    *,
    secret: bool = False,
    max_bytes: int = MAX_BYTES,
    owners: Collection[int] = ROOT_ONLY,
) -> bytes:
    """The contents of ``path`` (labelled ``what`` in errors, e.g. ``private-key``) if only
    root could have written it; :class:`UntrustedFileError` says why not."""
    with _walked(what, str(path), owners) as (walk, dir_fd, name):
        st = walk.check(dir_fd, name, secret, max_bytes)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            raise walk.fail(f"cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            now = os.fstat(f.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise walk.fail("changed while it was being read")
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise walk.fail(f"has more than {max_bytes} bytes: at most {max_bytes}")
        return data
