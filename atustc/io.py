"""Atomic file writes and folders, and small JSON helpers.

Every file the toolkit writes goes through :func:`atomic_path` (write to a temporary file in the
same folder, then rename), so an interrupted or failed command never leaves a half-written file
and never destroys the previous version. A folder written as a whole (a split) goes through
:func:`atomic_dir` the same way. Both give their output the mode an ordinary ``open``/``mkdir``
would give under the process umask (``tempfile`` alone would leave 0600 files and 0700 folders,
which a group on a shared cluster cannot read).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel shows it.

    Linux reports it in ``/proc/self/status`` (``Umask:``, since 4.7). Elsewhere it is read by
    setting a strict mask (0o077) and restoring the old one under a lock: a file another thread
    creates in that instant gets a stricter mode, never a looser one.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old


def file_mode() -> int:
    """The mode of a new file under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode of a new folder under the current umask (``0o777 & ~umask``)."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, with the mode an ordinary ``mkdir`` would give."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, dir_mode())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers that infer the
    format from the name (numpy, matplotlib, pyarrow) behave. On error the temporary file is
    removed and ``path`` is left untouched. The file gets the mode of an ordinary write
    (``0o666 & ~umask``), whatever the writer did to the temporary file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; swap it onto ``path`` when the block succeeds.

    An existing ``path`` is renamed aside, the new folder renamed in, and only then the old one
    deleted, so a failure at any point leaves either the old folder or the new one, never a
    mix. On error the temporary folder is removed and ``path`` is left untouched. Refusing to
    replace a folder is the caller's decision (``--overwrite``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(target.parent, prefix=f".{target.name}.tmp-")
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return obj.as_posix()
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning a missing or malformed file into an :class:`AtustcError`."""
    from atustc.errors import AtustcError

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AtustcError(f"{p}: file not found") from None
    except json.JSONDecodeError as exc:
        raise AtustcError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
