"""Writing a model file atomically, and checking beforehand that it can be written.

Writes are atomic: the file is written under a temporary name in the same
directory (``.<name>.<host tag>.<pid>.<random>.tmp``; a name too long for that is
shortened to its start and a hash, see :func:`_temporary_stem`), flushed to disk, then
renamed over the target, so a crash or an exception mid-save leaves any
previous file intact. A later write of the same file removes the temporary
files of writers that died mid-write (same machine, process gone); a live
writer's file is never touched.

:func:`check_writable` makes the same temporary file (and removes it), so that
a path that cannot be written fails before training, not after it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from .format import PathLike, _write_archive

#: A temporary file's name: ``.<target name>.<host>.<pid>.<random>.tmp``. The host
#: tag and the pid let a later write prove the file abandoned (see _remove_abandoned).
_TEMPORARY = re.compile(
    r"\.(?P<target>.+)\.(?P<host>[0-9a-f]{8})\.(?P<pid>[0-9]+)\.[0-9a-f]{12}\.tmp"
)


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """8 hex digits naming this machine, boot and process namespace.

    A pid identifies a process only within one boot of one machine (and one
    pid namespace): a temporary file written elsewhere (another host sharing
    the directory, another container) carries another tag and is never judged
    from here.
    """
    parts = [os.uname().nodename if hasattr(os, "uname") else ""]
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as boot:
        parts.append(boot.read())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


#: The bytes a temporary name adds to its stem, at most: the leading dot, the host
#: tag, a pid of up to 10 digits (any 32-bit pid), the random part and ``.tmp``.
_TEMPORARY_OVERHEAD = len(".") + len(".01234567") + len(".4294967295") + len(".0123456789ab.tmp")
#: A file name's longest length in bytes where the file system does not say (Linux,
#: macOS and Windows alike).
_DEFAULT_NAME_MAX = 255


def _name_max(directory: str) -> int:
    """The longest file name, in bytes, that ``directory``'s file system takes."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or not known
        return _DEFAULT_NAME_MAX


def _encoded_length(name: str) -> int:
    """The length of ``name`` in bytes, as the file system stores it."""
    return len(os.fsencode(name))


def _temporary_stem(name: str, name_max: int) -> str:
    """What a temporary file of the target ``name`` is named after: the name itself, or
    where the temporary name would be too long, its start and a hash of all of it.

    Depends on the target's name and directory only (not on the pid), so that a later
    writer finds the temporary files of earlier ones (:func:`_remove_abandoned`); the
    hash keeps two long names that start alike apart.
    """
    room = name_max - _TEMPORARY_OVERHEAD
    if _encoded_length(name) <= room:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    start = name
    # Cut whole characters, in bytes of the file system's encoding: a name of multi-byte
    # characters ("日本" is 6 bytes in UTF-8) keeps no broken half of one.
    while start and _encoded_length(f"{start}~{digest}") > room:
        start = start[:-1]
    return f"{start}~{digest}"


def _temporary_name(target: str, what: str) -> str:
    """A fresh temporary file name next to ``target`` (see :data:`_TEMPORARY`).

    Raises
    ------
    OSError
        ``ENAMETOOLONG``: ``target``'s own name is too long for its file system
        (checked here, as the temporary file's creation no longer tells).
    """
    directory, name = os.path.split(os.path.abspath(target))
    name_max = _name_max(directory)
    if _encoded_length(name) > name_max:
        raise OSError(
            errno.ENAMETOOLONG,
            f"cannot write the {what} file {target!r}: its name is {_encoded_length(name)} "
            f"bytes long, over the {name_max} its file system allows",
            target,
        )
    stem = _temporary_stem(name, name_max)
    return os.path.join(
        directory, f".{stem}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    )


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; anything doubtful counts as alive)."""
    if pid <= 0:
        return True  # not a pid we wrote: leave the file alone
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process: it exists
    return True


def _remove_abandoned(target: str) -> None:
    """Remove the temporary files of earlier writes of ``target`` whose writer is dead.

    A writer killed mid-write (kill -9, power loss) leaves its temporary file.
    One is provably abandoned when it was written on this machine (same host
    tag) by a process that no longer exists: a live writer's file, or one from
    another machine, is never touched. POSIX only (``os.kill(pid, 0)`` is a
    harmless existence check there, not on Windows). A file whose pid has been
    reused by a new process is kept, which errs on the safe side.
    """
    if os.name != "posix":  # pragma: no cover
        return
    directory, name = os.path.split(os.path.abspath(target))
    stem = _temporary_stem(name, _name_max(directory))
    tag = _host_tag()
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if (
                match is None
                or match["target"] != stem
                or match["host"] != tag
                or int(match["pid"]) == os.getpid()
                or _process_alive(int(match["pid"]))
            ):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)


def check_writable(path: PathLike, what: str = "model") -> None:
    """Raise ``OSError`` naming ``path`` unless a file can be written there.

    Creates (and removes) a temporary file in the target's directory, as the
    atomic write will: the one test that covers permissions, read-only file
    systems, missing directories and quotas alike. Used before training, so
    that a path that cannot be written fails at once, not after the training.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    what : str, default "model"
        What the file is, for the message (``"checkpoint"``).

    Raises
    ------
    OSError
        The file cannot be written; the message names ``path`` and the reason.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(
            errno.EISDIR, f"cannot write the {what} file {target!r}: it is a directory", target
        )
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write the {what} file {target!r}: its directory {directory!r} does not "
            "exist (create it first)",
            target,
        )
    probe = _temporary_name(target, what)
    os.close(_open_temporary(probe, target, what))
    with contextlib.suppress(OSError):
        os.unlink(probe)


# O_EXCL: never reuse (or follow a link at) an existing name; mode 0o666 lets the
# umask decide the permissions, as for any file the user creates.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _open_temporary(temporary: str, target: str, what: str) -> int:
    """Create ``temporary`` (next to ``target``) for writing; its file descriptor.

    Raises
    ------
    OSError
        Of the same type and errno as the system's, naming ``target``: the temporary
        name is ours, not the user's.
    """
    try:
        return os.open(temporary, _WRITE_FLAGS, 0o666)
    except OSError as error:
        raise type(error)(
            error.errno, f"cannot write the {what} file {target!r}: {error.strerror}", target
        ) from None


def _write_atomic(
    path: PathLike,
    content: dict[str, Any],
    arrays: Mapping[str, Any],
    check: Callable[[str], None] | None = None,
) -> None:
    """Write to a temporary file next to ``path``, flush it to disk, rename it over ``path``.

    The temporary file is named after this process (see :func:`_remove_abandoned`),
    and the temporary files of earlier writers of ``path`` that died mid-write are
    removed once this write has succeeded.

    Parameters
    ----------
    path : str or os.PathLike
    content, arrays
        The description and its arrays (:func:`~handnet.io.format._write_archive`).
    check : callable, optional
        Called with the complete temporary file's path before the rename; whatever
        it raises leaves ``path`` as it was (and no temporary file).
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    temporary = _temporary_name(target, "model")
    descriptor = _open_temporary(temporary, target, "model")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            _write_archive(stream, content, arrays)
            stream.flush()
            os.fsync(stream.fileno())
        if check is not None:
            check(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    _remove_abandoned(target)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open directories
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
