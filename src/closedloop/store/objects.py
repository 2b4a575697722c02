"""The object store: ``s3://BUCKET/KEY`` names kept under any fsspec root."""

from __future__ import annotations

import glob
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from botocore.exceptions import BotoCoreError
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from closedloop.errors import StoreError, ValidationError

__all__ = [
    "STALE_TEMPORARY_SECONDS",
    "STORAGE_ERRORS",
    "ObjectStore",
    "filesystem_for",
    "write_file_atomic",
]

logger = logging.getLogger(__name__)
# A temporary file this old next to an object is a write that was killed part way.
STALE_TEMPORARY_SECONDS = 60
# s3fs turns S3's answers into OSError but lets botocore's own failures through
# (no connection to the endpoint, no credentials); each means storage failed.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError)


def filesystem_for(url: str, field: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url``; ``field`` names it if none is installed."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        s3 = urlsplit(url).scheme in ("s3", "s3a")
        hint = " (pip install 'closedloop[s3]')" if s3 else ""
        raise ValidationError(
            f"{field} must be a folder or an fsspec URL whose filesystem is installed; "
            f"got {url!r}: {exc}{hint}",
            field,
        ) from exc
    return fs, path


class ObjectStore:
    """Maps object URIs onto a root folder or URL and writes objects atomically.

    ``s3://bucket/a/b.json`` is kept at ``<root>/bucket/a/b.json``; the root is a
    local folder by default, or any fsspec URL (``s3://``, ``memory://``, ...).
    """

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url
        self._fs: Any
        self._fs, self._root = filesystem_for(root_url, "CLOSEDLOOP_STORAGE_URL")
        self._local = isinstance(self._fs, LocalFileSystem)

    def locate(self, uri: str, field: str = "S3Uri") -> str:
        """The path under the root where ``uri`` (or a prefix) is kept; ``field`` names it in errors."""
        parts = urlsplit(uri)
        if parts.scheme not in ("s3", "https") or not parts.netloc:
            raise ValidationError(
                f"{field} must look like s3://BUCKET/KEY; got {uri!r}", field
            )
        segments = [s for s in parts.path.split("/") if s]
        if any(s in (".", "..") for s in segments) or parts.netloc in (".", ".."):
            raise ValidationError(
                f"{field} must not contain '.' or '..' segments; got {uri!r}", field
            )
        return "/".join([self._root.rstrip("/"), parts.netloc, *segments])

    def url(self, uri: str) -> str:
        """Where ``uri`` is kept, as a local path or a full fsspec URL (``s3://...``)."""
        path = self.locate(uri)
        return path if self._local else str(self._fs.unstrip_protocol(path))

    def write_atomic(self, uri: str, data: bytes) -> None:
        """Write ``data`` so that a reader sees the old object or the new, never a part."""
        path = self.locate(uri)
        try:
            if self._local:
                _write_local_atomic(Path(path), data)
            else:
                self._fs.pipe_file(path, data)
        except STORAGE_ERRORS as exc:
            raise StoreError(
                f"could not write {uri!r} to the object store: {exc}"
            ) from exc

    def read(self, uri: str) -> bytes:
        """The bytes of an object; NotFound as a StoreError naming the URI."""
        try:
            data: bytes = self._fs.cat_file(self.locate(uri))
        except STORAGE_ERRORS as exc:
            raise StoreError(
                f"could not read {uri!r} from the object store: {exc}"
            ) from exc
        return data

    def list_prefix(self, prefix: str) -> list[str]:
        """URIs of every object whose URI starts with ``prefix`` (a folder-like prefix)."""
        parts = urlsplit(prefix)
        root = self.locate(f"{parts.scheme}://{parts.netloc}")
        folder = self.locate(prefix)
        try:
            paths = self._fs.find(folder) if self._fs.exists(folder) else []
        except STORAGE_ERRORS as exc:
            raise StoreError(
                f"could not list {prefix!r} in the object store: {exc}"
            ) from exc
        base = f"{parts.scheme}://{parts.netloc}"
        return [
            base + str(p)[len(root) :]
            for p in paths
            if not str(p).rsplit("/", 1)[-1].startswith(".")
        ]

    def exists(self, uri: str) -> bool:
        try:
            return bool(self._fs.exists(self.locate(uri)))
        except STORAGE_ERRORS as exc:
            raise StoreError(
                f"could not look for {uri!r} in the object store: {exc}"
            ) from exc


def write_file_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to a file a user named, whole or not at all.

    A local file is written beside its target and renamed into place, through
    a symbolic link if the path is one, with the mode the file had (or the one
    a new file gets under the umask); an object store gets one put, which its
    readers never see half done (a streamed upload would leave a truncated
    object when the writer fails). Only a local folder is made when missing:
    fsspec would create a missing bucket.
    """
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)
        return
    target = Path(path).resolve()
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    _write_local_atomic(target, data, mode=mode)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # elsewhere reading it means setting it; put it back
    os.umask(current)
    return current


def _write_local_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Temporary file, fsync, rename, fsync of the folder; ``mode`` for the new file.

    Without ``mode`` the file keeps mkstemp's 0600: the object store's files
    are closedloop's own.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete what an earlier write of ``path`` left when its process was killed.

    Only temporaries older than a minute go, so a write still running in
    another process keeps its file.
    """
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                logger.info("removed a stale temporary file: %s", leftover)
        except FileNotFoundError:
            continue
