"""Find the files to ingest: folders recursively, include/exclude globs, hidden entries
skipped unless asked for, symlinks followed without ever visiting a folder twice."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from kb.ingest.readers import reader_for
from kb.options import IngestScope


@dataclass
class Found:
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not kb's to read
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): should have been read
    roots: list[Path] = field(default_factory=list)  # folders walked completely
    held: list[Path] = field(default_factory=list)  # set aside by the caller this time: kept, not read


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _inside(path: Path, root: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def is_gone(source: str) -> bool:
    """Whether a file is gone for good. A file kb cannot see right now (a folder without
    permission, a disk not mounted) is not gone: removing its document would lose data."""
    try:
        os.stat(source)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def discover(scope: IngestScope) -> Found:
    found = Found()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    paths, include, exclude, hidden = scope.paths, scope.include, scope.exclude, scope.hidden

    def consider(path: Path, rel: str) -> None:
        if not _utf8(str(path)):
            found.skipped.append((_printable(str(path)), "file name is not valid UTF-8; rename the file to ingest it"))
            return
        try:
            st = path.stat()
        except OSError as exc:
            found.failed.append((str(path), f"cannot stat ({exc.strerror})"))
            return
        identity = (st.st_dev, st.st_ino)  # one stat, where realpath costs an lstat per component
        if identity in seen_files:
            return
        if include and not _matches(rel, path.name, include):
            return
        if reader_for(path) is None:
            found.skipped.append((str(path), f"unsupported file type {path.suffix}"))
            return
        seen_files.add(identity)
        found.files.append(path)

    def walk(folder: Path, root: Path) -> None:
        try:
            st = folder.stat()
        except OSError as exc:
            found.failed.append((str(folder), f"cannot open folder ({exc.strerror})"))
            return
        if (st.st_dev, st.st_ino) in seen_dirs:
            return  # a symlink loop or a second link to a folder already walked
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found.failed.append((str(folder), f"cannot list folder ({exc.strerror})"))
            return
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            if not hidden and entry.name.startswith("."):
                continue
            if _matches(rel, entry.name, exclude):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
                is_file = entry.is_file()
            except OSError:
                is_dir = is_file = False
            if entry.is_symlink() and (is_dir or is_file) and not _inside(path, root):
                # A link to / or $HOME would otherwise pull in a whole disk.
                found.skipped.append((str(path), "symlink points outside the folder"))
            elif is_dir:
                walk(path, root)
            elif is_file:
                consider(path, rel)
            elif entry.is_symlink():
                found.skipped.append((str(path), "broken symlink"))
            else:
                found.skipped.append((str(path), "not a regular file (device, pipe or socket)"))

    for given in paths:
        path = Path(os.path.abspath(given.expanduser()))
        if path.is_dir():
            found.roots.append(path)
            walk(path, path)
        elif path.is_file():
            consider(path, path.name)
        else:
            found.failed.append((str(path), "no such file or folder"))
    return found
