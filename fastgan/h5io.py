"""Atomic file writes: the one way fastgan puts a file in place.

Every output (run files, Gram files, sweep parts, the consolidated sweep file, sweep.json) is
written to a temporary name in the destination folder (``.tmp-*``), flushed to the disk and renamed
into place, so a crash never leaves a half-written file under the final name, and the temporary file
is removed on any failure. HDF5 files are built in memory first and written as bytes: a full disk
or an I/O error is then one ``OSError`` from a plain write (never HDF5's error cascade and crash at
close), and nothing already in place is touched. Folders that hold such writes remove stale
``.tmp-*`` files of a crashed process (``stale_temporaries``).
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from typing import Callable

from .errors import FastganError, OutputExistsError, StorageError

PREFIX = ".tmp-"
WRITTEN: list[str] = []         # every path put in place by this process (what an interruption leaves complete)


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux); elsewhere set and
    restored at once."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def permissions(path: str, folder: bool = False) -> None:
    """The mode an ordinary ``open``/``mkdir`` would have given (temporary names are created private)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def atomic_write(path: str, write: Callable[[str], None], *, replace: bool = True) -> str:
    """``write(tmp)`` to a temporary name beside ``path``, then rename into place. With
    ``replace = False`` an existing ``path`` (one that appeared meanwhile, too) is not overwritten:
    :class:`OutputExistsError`. Returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=PREFIX, suffix=os.path.splitext(path)[1] + ".tmp", dir=folder)
        os.close(fd)
        write(tmp)
        permissions(tmp)
        if not replace and os.path.lexists(path):
            raise OutputExistsError(f"--out = {path!r}: file exists (use --force to overwrite)")
        os.replace(tmp, path)
        WRITTEN.append(path)
    except OSError as exc:
        _remove(tmp)
        if isinstance(exc, FastganError):
            raise
        raise StorageError(f"cannot write {path!r}: {exc.strerror or exc}; nothing under that name was changed") \
            from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp) -> None:
    try:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    except OSError:
        pass


PICTURES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_writable(path: str, force: bool, option: str = "--out", picture: bool | None = None,
                   redraw: bool = False) -> None:
    """Refuse, before any work is done: an empty name or one ending in a separator, an existing output
    (a link, a dangling one too, unless forced; with ``redraw`` a picture fastgan drew is replaced), a
    directory, a name too long for its folder, a missing or unwritable folder, and (``picture`` True /
    False) a name that is not / is a picture's."""
    if not path or path.endswith((os.sep, "/")):
        raise OutputExistsError(f"{option} = {path!r}: expected a file name")
    if os.path.isdir(path):
        raise OutputExistsError(f"{option} = {path!r}: is a directory, expected a file name")
    if os.path.lexists(path) and not force and not (redraw and drawn_by_fastgan(path)):
        raise OutputExistsError(f"{option} = {path!r}: file exists (use --force to overwrite)")
    ext = os.path.splitext(path)[1].lower()
    if picture is True and ext not in PICTURES:
        raise OutputExistsError(f"{option} = {path!r}: a picture needs one of the extensions {', '.join(PICTURES)}")
    if picture is False and ext in PICTURES:
        raise OutputExistsError(f"{option} = {path!r}: a data file cannot be named like a picture ({ext})")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputExistsError(f"{option} = {path!r}: folder {folder!r} does not exist")
    check_name_length(folder, os.path.basename(path), option, path)
    check_folder_writable(folder, option, path)


def check_name_length(folder: str, name: str, option: str, shown: str) -> None:
    """A name the folder's file system takes (and the temporary name it is first written under)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    temporary = len(PREFIX) + 8 + len(os.fsencode(os.path.splitext(name)[1])) + len(".tmp")
    if max(len(os.fsencode(name)), temporary) > limit:
        raise OutputExistsError(f"{option} = {shown!r}: the name is too long for its folder's file system "
                                f"(at most {limit} bytes there)")


def check_folder_writable(folder: str, option: str, shown: str | None = None) -> None:
    """Try to create (and remove) a temporary file in ``folder``: the only test that also sees read-only
    mounts, quotas and permissions as they apply to this process."""
    try:
        fd, probe = tempfile.mkstemp(prefix=PREFIX, suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputExistsError(f"{option} = {shown or folder!r}: folder {folder!r} is not writable "
                                f"({exc.strerror or exc})") from None


def check_distinct(a: str, b: str, what: str, other: str = "--out (the run file)") -> None:
    """Two files of one command (two outputs, or an output and an input) must be different files."""
    if os.path.realpath(a) == os.path.realpath(b) or _same_file(a, b):
        raise OutputExistsError(f"{what} = {b!r}: the same file as {other}; choose another name")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)                   # hard links too
    except OSError:
        return False


def atomic_bytes(path: str, data: bytes, *, replace: bool = True) -> str:
    """``data`` as the file at ``path`` (see :func:`atomic_write`), flushed to the disk before the rename."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return atomic_write(path, write, replace=replace)


def h5_image(fill: Callable) -> bytes:
    """The bytes of an HDF5 file built in memory by ``fill(h5file)``."""
    import io

    import h5py
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        fill(f)
    return buf.getvalue()


def contents(f) -> tuple[dict, dict]:
    """({path: array} of every dataset, {name: value} of every attribute) of an open HDF5 file, read into
    memory; the attributes of the root by their name, those of a group or dataset as ``path@name``."""
    import h5py

    arrays, attrs = {}, {k: f.attrs[k] for k in f.attrs.keys()}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]
        attrs.update({f"{name}@{k}": obj.attrs[k] for k in obj.attrs.keys()})
    f.visititems(visit)
    return arrays, attrs


def _attr_bytes(v) -> bytes:
    import numpy as np
    if isinstance(v, str):
        return b"s" + v.encode("utf-8", "surrogatepass")
    if isinstance(v, bytes):
        return b"b" + v
    a = np.asarray(v)
    if a.dtype.kind == "O":
        return b"o" + repr(a.tolist()).encode("utf-8", "backslashreplace")
    return f"{a.dtype.str}|{a.shape}|".encode() + np.ascontiguousarray(a).tobytes()


def digest(arrays: dict, attrs: dict | None = None, skip: tuple = ("checksum", "complete")) -> str:
    """SHA-256 over what :func:`contents` read: every dataset (path, dtype, shape and bytes, in path order)
    and, given ``attrs``, every attribute but those named in ``skip`` (where the checksum itself and a
    completion marker written after it are kept). A changed bit anywhere a reader looks changes it."""
    import numpy as np
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    for name in sorted(attrs or {}):
        if name not in skip:
            h.update(f"@{name}|".encode() + _attr_bytes(attrs[name]) + b"|")
    return h.hexdigest()


SEAL_SIZE = 512
SEAL_MAGIC = b"fastgan sealed HDF5, sha256 of the rest: "          # the earlier seal: a 512-byte user block
TRAILER_MAGIC = b"\nfastgan seal, sha256 of the bytes before: "     # the seal now: 512 bytes after the HDF5 image


def seal(image: bytes) -> bytes:
    """An HDF5 file's bytes followed by a 512-byte trailer that records their SHA-256. The HDF5 library
    ignores bytes past the file's recorded end, and the file still starts with the HDF5 signature (h5py,
    ``xarray.open_dataset`` without an engine and other readers open it unchanged); :func:`check_seal`
    verifies the bytes before any HDF5 code parses them (the HDF5 library can crash on a corrupted file
    instead of raising). Files sealed earlier carry the seal as a 512-byte user block in front instead."""
    head = TRAILER_MAGIC + hashlib.sha256(image).hexdigest().encode() + b"\n"
    return image + head + b"\0" * (SEAL_SIZE - len(head))


def unseal(data: bytes) -> bytes:
    """The HDF5 bytes of a sealed file's ``data`` (either kind of seal); ``data`` itself when unsealed."""
    if data.startswith(SEAL_MAGIC):
        return data[SEAL_SIZE:]
    if data[-SEAL_SIZE:].startswith(TRAILER_MAGIC):
        return data[:-SEAL_SIZE]
    return data


def check_seal(path: str) -> str | None:
    """Why the file at ``path`` cannot be trusted to HDF5 (its bytes changed since they were sealed);
    None when they are intact or the file carries no seal (written before seals, or by another program)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SEAL_SIZE)
            size = os.fstat(fh.fileno()).st_size
            if head.startswith(SEAL_MAGIC):                      # the earlier seal, in front
                want, start, end = head[len(SEAL_MAGIC):len(SEAL_MAGIC) + 64], SEAL_SIZE, size
            else:
                fh.seek(max(0, size - SEAL_SIZE))
                tail = fh.read(SEAL_SIZE)
                if size < SEAL_SIZE or not tail.startswith(TRAILER_MAGIC):
                    return _truncated(head, size)               # no seal (cut off, or never had one)
                want, start, end = tail[len(TRAILER_MAGIC):len(TRAILER_MAGIC) + 64], 0, size - SEAL_SIZE
            fh.seek(start)
            h = hashlib.sha256()
            left = end - start
            while left > 0:
                block = fh.read(min(1 << 20, left))
                if not block:
                    break
                h.update(block)
                left -= len(block)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if h.hexdigest() != want.decode("ascii", "replace"):
        return "its bytes changed after it was written (the seal's SHA-256 does not match)"
    return None


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _truncated(head: bytes, size: int) -> str | None:
    """Why an unsealed file whose HDF5 superblock is at byte 0 is shorter than the end of file that
    superblock records (a cut-off file, which the HDF5 library must not be left to parse); None otherwise."""
    import struct
    if not head.startswith(HDF5_SIGNATURE) or len(head) < 64:
        return None
    version = head[8]
    if version in (0, 1):
        width, at = head[13], 24 + (4 if version == 1 else 0)          # base, free space, end of file
        fields = (at, at + 2 * width)
    elif version in (2, 3):
        width = head[9]
        fields = (12, 12 + 2 * width)                                   # base, extension, end of file
    else:
        return None
    if width not in (4, 8):
        return None
    fmt = "<I" if width == 4 else "<Q"
    base, eof = (struct.unpack_from(fmt, head, i)[0] for i in fields)
    if size < base + eof:
        return f"it is cut off ({size} bytes of the {base + eof} its HDF5 superblock records)"
    return None


def atomic_h5(path: str, fill: Callable, *, replace: bool = True) -> str:
    """An HDF5 file written by ``fill(h5file)``: built in memory, sealed (:func:`seal`), then written (see
    :func:`atomic_bytes`)."""
    return atomic_bytes(path, seal(h5_image(fill)), replace=replace)


PICTURE_SOFTWARE = "fastgan"    # the PNG "Software" text of every picture fastgan draws: it owns them


def atomic_figure(path: str, fig, **savefig_kw) -> str:
    """A matplotlib figure rendered in memory (format from the extension), then written atomically; a PNG
    says it was drawn by fastgan (its "Software" text), which lets ``fastgan plot`` redraw it."""
    import io
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if fmt == "png":
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("fastgan")
        except PackageNotFoundError:
            v = "dev"
        savefig_kw.setdefault("metadata", {"Software": f"{PICTURE_SOFTWARE} {v}"})
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **savefig_kw)
    return atomic_bytes(path, buf.getvalue())


def drawn_by_fastgan(path: str) -> bool:
    """Whether ``path`` is a regular PNG file whose "Software" text says fastgan drew it (its text chunks
    come before the image data, so only the first chunks are read)."""
    import struct
    try:
        if os.path.islink(path) or not os.path.isfile(path):
            return False
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return False
                size, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or size > 1 << 16:
                    return False
                body = fh.read(size)
                fh.read(4)                                    # CRC
                if kind == b"tEXt" and body.startswith(b"Software\0"):
                    return body[len(b"Software\0"):].decode("latin-1").startswith(PICTURE_SOFTWARE + " ")
    except OSError:
        return False


def atomic_text(path: str, text: str) -> str:
    return atomic_bytes(path, text.encode())


def stale_temporaries(folder: str) -> list[str]:
    """Temporary files of unfinished writes in ``folder`` (a crash's leftovers)."""
    return glob.glob(os.path.join(folder, PREFIX + "*"))
