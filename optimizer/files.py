"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

#: Where a folder is staged beside its target: ".NAME.chipmix-XXXX".  A write killed outright
#: (SIGKILL, power) cannot clean up after itself; the next write to the same target does.
STAGING_MARK = ".chipmix-"


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def staging_folder(target: Path) -> Path:
    """A new, empty folder beside ``target`` to build its next contents in; folders a killed
    earlier write left there are removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}{STAGING_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_MARK}", dir=target.parent))


def replace_folder(staging: Path, target: Path, keep_others: bool = True, drop: tuple[str, ...] = ()) -> None:
    """Make ``staging`` the folder ``target``, in one step: a reader sees the old folder or the
    new one, never a mix.  With ``keep_others``, entries of the old folder that the new one does
    not have (a report written beside a plan, say) are moved into the new one first, except those
    named in ``drop`` (a file of the old plan the new one does not write: it would be stale)."""
    if not target.exists():
        os.replace(staging, target)
        return
    if keep_others:
        for entry in target.iterdir():
            if not (staging / entry.name).exists() and entry.name not in drop:
                os.replace(entry, staging / entry.name)
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # it holds the old folder now
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_MARK}old-", dir=target.parent))
    os.replace(target, old / "folder")
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
