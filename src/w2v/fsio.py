"""Atomic outputs and file fingerprints.

A step never writes straight to its output path: it fills a temporary sibling and renames it into place at
the end, so an interrupted run leaves either the old output, nothing, or the complete new one -- never a
half-written file that looks complete.

A temporary's name carries the id of the process writing it (``.vocab.tmp-<pid>-<random>``). A run killed by
SIGKILL cannot remove its own; :func:`remove_stale_temporaries` removes those whose process is gone, and
:func:`atomic_dir` does so beside its own target before it starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

CHUNK = 1 << 20


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (Linux), or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return None


def _writer_token(pid: int) -> str:
    """``PID.START``: the process id and its start time (Linux), so that a later process that gets the same id
    (ids are reused) is not taken for the writer."""
    fields = _process_stat(pid)
    return f"{pid}.{fields[19]}" if fields else str(pid)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{_writer_token(os.getpid())}-"


def _owner_alive(temporary: Path) -> bool:
    """Whether the process that writes ``temporary`` still runs. A killed process that nobody has reaped yet
    (a zombie, as after SIGKILL when its parent died too) does not count: it will never finish the file."""
    try:
        pid_text, _, start = temporary.name.split(".tmp-", 1)[1].split("-", 1)[0].partition(".")
        pid = int(pid_text)
    except (IndexError, ValueError):
        return False  # not one of ours, or from an older version: nobody writes it any more
    fields = _process_stat(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X") and (not start or fields[19] == start)
    try:
        os.kill(pid, 0)  # no /proc: signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def remove_stale_temporaries(targets: Iterable[Path | str]) -> list[Path]:
    """Remove the temporaries that killed runs left beside ``targets`` (the files or directories they were
    writing); return what was removed. A temporary whose process still runs is left alone."""
    removed = []
    for target in map(Path, targets):
        for temporary in target.parent.glob(f".{target.name}.tmp-*"):
            if not _owner_alive(temporary):
                shutil.rmtree(temporary) if temporary.is_dir() else temporary.unlink(missing_ok=True)
                removed.append(temporary)
    return removed


@contextlib.contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([target])  # SIGKILL skips the cleanup below
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), dir=target.parent))
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only; outputs get the usual permissions
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path | str, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``target`` for writing; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it owner-only (0600), unlike a plain open()
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_json(path: Path | str, data: dict) -> None:
    """Write small JSON (metrics, manifests) atomically, keys in a stable order."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
