"""One object-store contract, ``ObjectStore``, with a local-directory and an S3 backend.

Every caller (the service, the pipelines, the CLI, notebooks) is typed against the protocol, so
what differs between backends is a capability flag or a method, never an ``isinstance`` check
outside this module. The store owns object identity: ``etag`` is the content MD5 on both
backends (what S3 and MinIO give a single-part object), so events, the ledger and the API agree.

The S3 backend uses obstore (Rust ``object_store``, the engine delta-rs and polars use) for
objects and boto3 for bucket-level calls. The local backend works on file descriptors, never on
re-resolved paths: every key is walked from the bucket folder with ``O_NOFOLLOW``, so a symlink
inside a bucket cannot lead a read or write outside it, and size, etag and bytes of a read all
come from the one opened file, so a concurrent overwrite can never mix two versions. A write is
staged under a hidden ``.<token>#0`` name, hashed while it is written, fsynced and renamed into
place, with its MD5 stamped on the file (an extended attribute tied to its size and mtime) so
no reader has to hash it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import heapq
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import obstore
from obstore.exceptions import PreconditionError
from obstore.store import LocalStore, S3Store

from lakehouse.settings import Settings

if TYPE_CHECKING:  # a typing-only name in obstore's stubs
    from obstore.store import S3Config

BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255  # a file name on the local backend's filesystems
# Staged writes end in "#<n>" (ours and obstore's); listings and the watcher skip them.
STAGING_RE = re.compile(r"#\d+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
ETAG_XATTR = "user.lakewire.etag"
# An object's tags on the local backend: on the file itself, so an overwrite (a new file) drops
# them as a PUT without tags does on S3, and a rename or copy never leaves them behind.
TAGS_XATTR = "user.lakewire.tags"
# S3's object tagging limits (AWS, MinIO): lifecycle tag filters must mean the same on both.
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
READ_CHUNK_BYTES = 1024**2

ByteRange = tuple[int, int]
PresignMethod = Literal["GET", "PUT"]
RangeFor = Callable[[int], ByteRange | None]


class StorageError(Exception):
    """Base for errors a caller can show to a user as-is."""


class InvalidName(StorageError, ValueError):
    pass


class BucketNotFound(StorageError, LookupError):
    pass


class BucketExists(StorageError):
    pass


class ObjectNotFound(StorageError, LookupError):
    pass


class Unsupported(StorageError):
    """The backend cannot do this (versioning on a local folder, say); callers report it."""


class InvalidTags(StorageError, ValueError):
    """An object's tag set breaks S3's limits; the message names the tag at fault."""


class InvalidRange(StorageError, ValueError):
    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class KeyConflict(StorageError):
    """A folder-per-bucket store cannot hold both ``a`` and ``a/b`` (S3 can): refuse clearly."""


def validate_bucket_name(name: str) -> str:
    """Check the S3 naming rules on both backends, naming the rule that is broken."""
    if not 3 <= len(name) <= 63:
        raise InvalidName(f"bucket name must be 3-63 characters long (got {len(name)})")
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise InvalidName("bucket name may contain only lowercase letters, digits and hyphens")
    if not BUCKET_NAME_RE.match(name):
        raise InvalidName("bucket name must start and end with a lowercase letter or digit")
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            raise InvalidName(f"bucket name must not start with '{prefix}' (reserved by S3)")
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", ".mrap"):
        if name.endswith(suffix):
            raise InvalidName(f"bucket name must not end with '{suffix}' (reserved by S3)")
    return name


def validate_key(key: str) -> str:
    """Refuse keys that could escape a bucket folder, that S3 refuses, or that would never be
    announced (a hidden last segment is an in-progress file by convention)."""
    if not key:
        raise InvalidName("object key must not be empty")
    if _CONTROL_RE.search(key):
        raise InvalidName("object key must not contain control characters (tab, newline, NUL…)")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidName(f"object key must be at most {MAX_KEY_BYTES} bytes (UTF-8)")
    if "\\" in key:  # S3 servers disagree on it (SeaweedFS reads it as '/'); AWS says avoid
        raise InvalidName("object key must not contain '\\'")
    if key.startswith("/"):
        raise InvalidName("object key must not start with '/'")
    parts = key.split("/")
    if any(part in ("..", ".") for part in parts):
        raise InvalidName("object key must not contain '.' or '..' segments")
    if key.endswith("/") or "//" in key:
        raise InvalidName("object key must not contain empty path segments")
    if parts[-1].startswith("."):
        raise InvalidName("object name must not start with '.' (hidden files are never announced)")
    if STAGING_RE.search(key):
        raise InvalidName("object key must not end in '#<digits>' (reserved for staging)")
    return key


def validate_tags(tags: dict[str, str]) -> dict[str, str]:
    """S3's rules for an object's tag set (at most 10; key 1-128, value 0-256 characters, no
    control characters), checked the same on both backends so a tag filter means one thing."""
    if len(tags) > MAX_TAGS:
        raise InvalidTags(f"an object has at most {MAX_TAGS} tags, not {len(tags)}")
    for k, v in tags.items():
        if not 1 <= len(k) <= MAX_TAG_KEY:
            raise InvalidTags(f"tag key {k!r}: 1 to {MAX_TAG_KEY} characters")
        if len(v) > MAX_TAG_VALUE:
            raise InvalidTags(f"tag {k!r}: the value is longer than {MAX_TAG_VALUE} characters")
        if _CONTROL_RE.search(k) or _CONTROL_RE.search(v):
            raise InvalidTags(f"tag {k!r}: no control characters in a key or value")
    return dict(tags)


def validate_prefix(prefix: str) -> str:
    """A listing prefix names folders and the start of a name; its folders obey key rules."""
    if _CONTROL_RE.search(prefix):
        raise InvalidName("prefix must not contain control characters")
    if len(prefix.encode()) > MAX_KEY_BYTES:
        raise InvalidName(f"prefix must be at most {MAX_KEY_BYTES} bytes (UTF-8)")
    parts = prefix.split("/")
    if (
        prefix.startswith("/")
        or any(p == "" for p in parts[:-1])
        or any(p in (".", "..") for p in parts)
    ):
        raise InvalidName("prefix must not start with '/' or contain '', '.' or '..' segments")
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str
    version: str | None = None
    # Local backend: the file's exact mtime, which the directory watcher compares.
    mtime_ns: int | None = None

    @classmethod
    def from_meta(cls, meta: Any) -> ObjectInfo:
        return cls(
            key=meta["path"],
            size=int(meta["size"]),
            last_modified=meta["last_modified"],
            etag=(meta.get("e_tag") or "").strip('"'),
            version=meta.get("version"),
        )


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime | None


@dataclass(frozen=True)
class Encryption:
    enabled: bool
    algorithm: str | None = None
    supported: bool = True


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    size: int
    last_modified: datetime
    etag: str
    is_latest: bool
    is_delete_marker: bool = False


@dataclass(frozen=True)
class Listing:
    folders: list[str]
    objects: list[ObjectInfo]
    next_cursor: str | None


@dataclass
class ObjectReader:
    """An opened object: its facts and its bytes come from the same version.

    Iterate it (async) for the bytes of ``byte_range`` (``[start, end)``) or of the whole
    object; ``close`` releases it early when the bytes are not wanted.
    """

    info: ObjectInfo
    byte_range: ByteRange | None
    content_type: str | None
    _chunks: AsyncIterator[bytes]
    _close: Callable[[], None]

    @property
    def length(self) -> int:
        return self.byte_range[1] - self.byte_range[0] if self.byte_range else self.info.size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._close()


class ObjectStore(Protocol):
    """What every backend offers; the service, pipelines, CLI and notebooks use only this."""

    kind: Literal["local", "s3"]
    # The backend announces writes itself (MinIO's NATS target); else the service's watcher does.
    native_events: bool
    # presign() works; else the service signs links it serves itself.
    signs_urls: bool

    def list_buckets(self) -> list[BucketInfo]: ...
    def bucket_exists(self, bucket: str) -> bool: ...
    def create_bucket(self, bucket: str) -> None: ...
    def delete_bucket(self, bucket: str) -> None: ...
    def store(self, bucket: str) -> Any: ...
    def url(self, bucket: str, path: str = "") -> str: ...
    def storage_options(self) -> dict[str, str]: ...
    def ping(self) -> bool: ...
    def put(self, bucket: str, key: str, data: bytes | Iterable[bytes] | Path) -> ObjectInfo: ...
    async def put_stream_async(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None = None,
        part_size: int = 8 * 1024**2,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo: ...
    def head(self, bucket: str, key: str) -> ObjectInfo: ...
    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]: ...
    def get_bytes(self, bucket: str, key: str) -> bytes: ...
    def get_stream(
        self, bucket: str, key: str, chunk_size: int = 8 * 1024**2
    ) -> Iterator[bytes]: ...
    async def open_async(
        self, bucket: str, key: str, range_for: RangeFor | None = None
    ) -> ObjectReader: ...
    def local_file(self, bucket: str, key: str) -> Path | None: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = "/",
        cursor: str | None = None,
        limit: int = 1000,
    ) -> Listing: ...
    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> ObjectInfo: ...
    def encryption(self, bucket: str) -> Encryption: ...
    def set_encryption(
        self, bucket: str, algorithm: str | None, kms_key_id: str | None = None
    ) -> Encryption: ...
    def versioning(self, bucket: str) -> str: ...
    def set_versioning(self, bucket: str, enabled: bool) -> str: ...
    def list_versions(self, bucket: str, key: str) -> list[ObjectVersion]: ...
    def restore_version(self, bucket: str, key: str, version_id: str) -> ObjectInfo: ...
    def presign(
        self, bucket: str, key: str, method: PresignMethod, expires_in: timedelta
    ) -> str: ...
    def get_notification_queues(self, bucket: str) -> list[dict[str, Any]]: ...
    def put_notification_queues(self, bucket: str, queues: list[dict[str, Any]]) -> None: ...
    def get_tags(self, bucket: str, key: str) -> dict[str, str]: ...
    def set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None: ...


# -- listing pages, shared by both backends ----------------------------------------------------
_T = TypeVar("_T")
_FOLDER_END = "\U0010ffff"


def _paginate(
    stream: Iterable[tuple[str, _T | None]],
    prefix: str,
    delimiter: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[tuple[str, _T | None]], str | None]:
    """One page of keys in order, with keys under a delimiter folded into their folder
    (``None`` marks a folder). ``cursor`` is the last entry of the previous page; a folder is
    written as ``<folder>\\U0010ffff`` there so the next page skips its contents."""
    entries: list[tuple[str, _T | None]] = []
    seen_folders: set[str] = set()
    for key, item in stream:
        if cursor is not None and key <= cursor:
            continue
        if item is not None and delimiter:
            rest = key[len(prefix) :]
            if delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                if folder in seen_folders or (cursor is not None and folder <= cursor):
                    continue
                seen_folders.add(folder)
                entries.append((folder, None))
            else:
                entries.append((key, item))
        else:
            entries.append((key, item))
        if len(entries) > limit:
            break
    page, more = entries[:limit], len(entries) > limit
    next_cursor = None
    if more and page:
        last, item = page[-1]
        next_cursor = last if item is not None else last + _FOLDER_END
    return page, next_cursor


Entry = tuple[str, Callable[[], "ObjectInfo | None"] | None]


class _Listings:
    """Listing pages and object iteration, the same on both backends: a backend yields its
    entries in key order (``None`` for a folder, else a loader of the object's facts, called
    only for what ends up on the page)."""

    def _entries(
        self, bucket: str, prefix: str, delimiter: str | None, cursor: str | None
    ) -> Iterator[Entry]:
        raise NotImplementedError

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        for _, load in self._entries(bucket, prefix, None, None):
            if load is not None and (info := load()) is not None:
                yield info

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = "/",
        cursor: str | None = None,
        limit: int = 1000,
    ) -> Listing:
        """One page in key order; folders (common prefixes) and objects merged, so a page
        boundary can fall anywhere and the next page starts strictly after the cursor."""
        entries = self._entries(bucket, prefix, delimiter, cursor)
        page, next_cursor = _paginate(entries, prefix, delimiter, cursor, limit)
        objects = [info for _, load in page if load is not None and (info := load()) is not None]
        return Listing(
            folders=[k for k, load in page if load is None],
            objects=objects,
            next_cursor=next_cursor,
        )


# -- the local backend: one folder per bucket, walked by file descriptor ------------------------
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO someone left in a bucket must not hang the service.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


def _stamp(fd: int, st: os.stat_result, md5: str) -> None:
    """Record the content MD5 on the file, valid while its size and mtime stay as hashed."""
    with contextlib.suppress(OSError):  # a filesystem without user xattrs just re-hashes
        os.setxattr(fd, ETAG_XATTR, f"{st.st_size}:{st.st_mtime_ns}:{md5}".encode())


def _stamped(target: int | str, st: os.stat_result) -> str | None:
    try:
        if isinstance(target, int):
            raw = os.getxattr(target, ETAG_XATTR).decode()
        else:
            raw = os.getxattr(target, ETAG_XATTR, follow_symlinks=False).decode()
    except OSError:
        return None
    size, mtime_ns, md5 = [*raw.split(":"), "", "", ""][:3]
    return md5 if (size, mtime_ns) == (str(st.st_size), str(st.st_mtime_ns)) and md5 else None


def _fd_identity(fd: int) -> tuple[os.stat_result, str]:
    """Size and content MD5 of an open file, consistent with each other.

    Atomic writers replace a file (a new inode), so an open descriptor's bytes never change
    under it; a writer that rewrites in place (``cp`` over a file) is caught by the size/mtime
    check around the hash, which is then repeated.
    """
    st = os.fstat(fd)
    known = _stamped(fd, st)
    if known is not None:
        return st, known
    md5 = ""
    for _ in range(3):
        h = hashlib.md5(usedforsecurity=False)
        offset = 0
        while chunk := os.pread(fd, 4 * READ_CHUNK_BYTES, offset):
            h.update(chunk)
            offset += len(chunk)
        md5 = h.hexdigest()
        after = os.fstat(fd)
        if (
            (after.st_size, after.st_mtime_ns)
            == (st.st_size, st.st_mtime_ns)
            == (
                offset,
                st.st_mtime_ns,
            )
        ):
            _stamp(fd, st, md5)
            return st, md5
        st = after
    return st, md5


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)


class _StagedWrite:
    """A write that appears whole or not at all: staged hidden, hashed, fsynced, renamed."""

    def __init__(self, store: LocalObjectStore, bucket: str, key: str) -> None:
        self.store, self.bucket, self.key = store, bucket, key
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        for attempt in range(3):
            self.dir_fd, self.name = store._parent(bucket, key, create=True)
            self.tmp = f".{secrets.token_hex(8)}#0"
            try:
                self.fd = os.open(
                    self.tmp,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o644,
                    dir_fd=self.dir_fd,
                )
                return
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) folder we had opened: walk again.
                os.close(self.dir_fd)
                if attempt == 2:
                    raise
            except BaseException:
                os.close(self.dir_fd)
                raise

    def write(self, block: bytes | memoryview) -> None:
        self.md5.update(block)
        view = memoryview(block)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(block)

    def commit(self) -> ObjectInfo:
        try:
            os.fsync(self.fd)  # acknowledged means on disk
            st = os.fstat(self.fd)
            md5 = self.md5.hexdigest()
            _stamp(self.fd, st, md5)
            os.close(self.fd)
            self.fd = -1
            try:
                os.replace(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            except IsADirectoryError as exc:
                raise KeyConflict(
                    f"'{self.key}' is a folder in bucket '{self.bucket}'; choose another key"
                ) from exc
        except BaseException:
            self.abort()
            raise
        os.close(self.dir_fd)
        return ObjectInfo(self.key, st.st_size, _mtime(st), md5, mtime_ns=st.st_mtime_ns)

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.tmp, dir_fd=self.dir_fd)
        with contextlib.suppress(OSError):
            os.close(self.dir_fd)
        self.store._prune(self.bucket, self.key)


class LocalObjectStore(_Listings):
    """Embedded default: ``<data_dir>/storage/<bucket>/<key>``."""

    kind: Literal["local", "s3"] = "local"
    native_events = False
    signs_urls = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._stores: dict[str, LocalStore] = {}

    # -- names and descriptors ---------------------------------------------------------------
    def bucket_path(self, bucket: str) -> Path:
        validate_bucket_name(bucket)
        return self.root / bucket

    def _check_key(self, key: str) -> list[str]:
        validate_key(key)
        parts = key.split("/")
        for part in parts:
            if len(part.encode()) > MAX_SEGMENT_BYTES:
                raise InvalidName(
                    f"each '/'-separated part of a key must be at most {MAX_SEGMENT_BYTES} bytes "
                    "on the local backend (a file name's limit)"
                )
        return parts

    def _bucket_fd(self, bucket: str) -> int:
        try:
            return os.open(self.bucket_path(bucket), _DIR_FLAGS)
        except OSError as exc:
            raise BucketNotFound(f"bucket '{bucket}' does not exist") from exc

    def _parent(self, bucket: str, key: str, create: bool = False) -> tuple[int, str]:
        """An open descriptor of the key's folder and the key's last part, no link followed."""
        parts = self._check_key(key)
        fd = self._bucket_fd(bucket)
        try:
            for i, part in enumerate(parts[:-1]):
                fd = self._descend(fd, part, create, bucket, "/".join(parts[: i + 1]), key)
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    @staticmethod
    def _descend(fd: int, part: str, create: bool, bucket: str, folder: str, key: str) -> int:
        for _ in range(2):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError as exc:
                if not create:
                    raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                continue
            except OSError as exc:
                if exc.errno not in _NOT_FOLLOWED:
                    raise
                if not create:
                    raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
                raise KeyConflict(
                    f"'{folder}' is an object (or a link, which the local backend never "
                    f"follows) in bucket '{bucket}', so it cannot also be a folder"
                ) from exc
            os.close(fd)
            return child
        raise ObjectNotFound(f"object '{bucket}/{key}' does not exist")

    def _open(self, bucket: str, key: str) -> tuple[int, os.stat_result, str]:
        """Open a key's file for reading: descriptor, its stat and its content MD5."""
        dir_fd, name = self._parent(bucket, key)
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
        finally:
            os.close(dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ObjectNotFound(f"object '{bucket}/{key}' does not exist")
            st, md5 = _fd_identity(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, st, md5

    def _prune(self, bucket: str, key: str) -> None:
        """Drop folders a removal or an aborted write left empty (S3 has no empty folders)."""
        root = self.bucket_path(bucket)
        parent = (root / key).parent
        while parent != root:
            try:
                parent.rmdir()  # never follows a link: rmdir of a symlink fails
            except OSError:
                break
            parent = parent.parent

    # -- buckets -------------------------------------------------------------------------------
    def list_buckets(self) -> list[BucketInfo]:
        out = []
        for child in sorted(self.root.iterdir()):
            if BUCKET_NAME_RE.match(child.name) and self._is_bucket_dir(child):
                created = datetime.fromtimestamp(child.stat().st_ctime, tz=UTC)
                out.append(BucketInfo(child.name, created))
        return out

    @staticmethod
    def _is_bucket_dir(path: Path) -> bool:
        try:
            return stat.S_ISDIR(path.lstat().st_mode)
        except OSError:
            return False

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self._is_bucket_dir(self.bucket_path(bucket))
        except InvalidName:
            return False

    def create_bucket(self, bucket: str) -> None:
        path = self.bucket_path(bucket)
        try:
            path.mkdir()
        except FileExistsError as exc:
            raise BucketExists(f"bucket '{bucket}' already exists") from exc

    def delete_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        shutil.rmtree(self.bucket_path(bucket))  # removes links, never what they point to
        self._stores.pop(bucket, None)

    def store(self, bucket: str) -> LocalStore:
        if bucket not in self._stores:
            self._stores[bucket] = LocalStore(self.bucket_path(bucket))
        return self._stores[bucket]

    def url(self, bucket: str, path: str = "") -> str:
        base = self.bucket_path(bucket)
        return (base / path).as_uri() if path else base.as_uri()

    def storage_options(self) -> dict[str, str]:
        return {}

    def ping(self) -> bool:
        return self.root.is_dir()

    # -- objects -------------------------------------------------------------------------------
    def put(self, bucket: str, key: str, data: bytes | Iterable[bytes] | Path) -> ObjectInfo:
        write = _StagedWrite(self, bucket, key)
        try:
            if isinstance(data, Path):
                with data.open("rb") as fh:
                    while block := fh.read(4 * READ_CHUNK_BYTES):
                        write.write(block)
            elif isinstance(data, bytes | bytearray | memoryview):
                write.write(data)
            else:
                for block in data:
                    write.write(block)
        except BaseException:
            write.abort()
            raise
        return write.commit()

    async def put_stream_async(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None = None,
        part_size: int = 8 * 1024**2,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Write each block as it arrives (on a worker thread); nothing is buffered whole.

        ``metadata`` is not kept: a plain file has no place for it that every filesystem keeps,
        and the watcher, which emits this backend's events, is told the writer directly.
        """
        write = await asyncio.to_thread(_StagedWrite, self, bucket, key)
        try:
            async for block in chunks:
                await asyncio.to_thread(write.write, block)
        except BaseException:
            await asyncio.to_thread(write.abort)
            raise
        return await asyncio.to_thread(write.commit)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        fd, st, md5 = self._open(bucket, key)
        os.close(fd)
        return ObjectInfo(key, st.st_size, _mtime(st), md5, mtime_ns=st.st_mtime_ns)

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
        fd, st, md5 = self._open(bucket, key)
        try:
            data = os.pread(fd, st.st_size, 0) if st.st_size else b""
        finally:
            os.close(fd)
        return ObjectInfo(key, st.st_size, _mtime(st), md5, mtime_ns=st.st_mtime_ns), data

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.get(bucket, key)[1]

    def get_stream(self, bucket: str, key: str, chunk_size: int = 8 * 1024**2) -> Iterator[bytes]:
        fd, st, _ = self._open(bucket, key)
        try:
            offset = 0
            while offset < st.st_size:
                chunk = os.pread(fd, min(chunk_size, st.st_size - offset), offset)
                if not chunk:
                    break
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def open_async(
        self, bucket: str, key: str, range_for: RangeFor | None = None
    ) -> ObjectReader:
        fd, st, md5 = await asyncio.to_thread(self._open, bucket, key)
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                os.close(fd)

        try:
            byte_range = range_for(st.st_size) if range_for else None
        except BaseException:
            close()
            raise
        start, end = byte_range or (0, st.st_size)

        async def chunks() -> AsyncIterator[bytes]:
            offset = start
            try:
                while offset < end:
                    n = min(READ_CHUNK_BYTES, end - offset)
                    chunk = await asyncio.to_thread(os.pread, fd, n, offset)
                    if not chunk:
                        break
                    offset += len(chunk)
                    yield chunk
            finally:
                close()

        info = ObjectInfo(key, st.st_size, _mtime(st), md5, mtime_ns=st.st_mtime_ns)
        return ObjectReader(info, byte_range, None, chunks(), close)

    def local_file(self, bucket: str, key: str) -> Path | None:
        """The file itself, for readers (polars) that open paths; checked like any read."""
        fd, _, _ = self._open(bucket, key)
        os.close(fd)
        return self.bucket_path(bucket) / key

    def delete(self, bucket: str, key: str) -> None:
        """Idempotent as on S3; only a regular file is ever removed (never a link's target)."""
        try:
            dir_fd, name = self._parent(bucket, key)
        except ObjectNotFound:
            return
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        finally:
            os.close(dir_fd)
        self._prune(bucket, key)

    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> ObjectInfo:
        """Stream a file into another bucket under the same key, appearing atomically."""
        if not self.bucket_exists(dst_bucket):
            raise BucketNotFound(f"bucket '{dst_bucket}' does not exist")
        return self.put(dst_bucket, key, self.get_stream(bucket, key, 4 * READ_CHUNK_BYTES))

    # -- tags ----------------------------------------------------------------------------------
    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        fd, _, _ = self._open(bucket, key)
        try:
            raw = os.getxattr(fd, TAGS_XATTR)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP):
                return {}
            raise
        finally:
            os.close(fd)
        tags = json.loads(raw)
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    def set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        """Replace the object's tags (``{}`` removes them). Setting an extended attribute
        changes neither the bytes nor the mtime, so the etag stamp stays valid."""
        validate_tags(tags)
        fd, _, _ = self._open(bucket, key)
        try:
            if tags:
                os.setxattr(fd, TAGS_XATTR, json.dumps(tags, sort_keys=True).encode())
            else:
                with contextlib.suppress(OSError):
                    os.removexattr(fd, TAGS_XATTR)
        except OSError as exc:
            raise Unsupported(
                f"the filesystem under {self.root} keeps no user extended attributes, "
                "so objects cannot be tagged on it"
            ) from exc
        finally:
            os.close(fd)

    # -- listing -------------------------------------------------------------------------------
    def _info(self, key: str, path: str) -> ObjectInfo | None:
        """Listing facts for one entry; the MD5 from its stamp, or hashed once and stamped."""
        try:
            st = os.stat(path, follow_symlinks=False)
            md5 = _stamped(path, st)
            if md5 is None:
                fd = os.open(path, _READ_FLAGS)
                try:
                    st, md5 = _fd_identity(fd)
                finally:
                    os.close(fd)
        except OSError:
            return None  # gone (or replaced by a link) since the folder was read
        return ObjectInfo(key, st.st_size, _mtime(st), md5, mtime_ns=st.st_mtime_ns)

    def _walk(
        self, directory: Path, rel: str, name_prefix: str, cursor: str | None, recurse: bool
    ) -> Iterator[tuple[str, Path | None]]:
        """Keys under ``directory`` in S3 (sorted) order: files as ``(key, path)``, folders as
        ``(key/, None)`` when not recursing. Links, hidden and staged names are not objects."""
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        named = []
        for entry in entries:
            if (
                not entry.name.startswith(name_prefix)
                or entry.name.startswith(".")
                or STAGING_RE.search(entry.name)
                or entry.is_symlink()
            ):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                continue
            named.append((rel + entry.name + ("/" if is_dir else ""), is_dir, entry.path))
        named.sort(key=lambda item: item[0])
        for key, is_dir, path in named:
            if is_dir:
                if cursor is not None and cursor >= key + _FOLDER_END:
                    continue  # the whole folder was on earlier pages
                if recurse:
                    yield from self._walk(Path(path), key, "", cursor, True)
                elif (cursor is None or key > cursor) and any(os.scandir(path)):
                    yield key, None
            elif cursor is None or key > cursor:
                yield key, Path(path)

    def _walk_prefix(
        self, bucket: str, prefix: str, cursor: str | None, recurse: bool
    ) -> Iterator[tuple[str, Path | None]]:
        validate_prefix(prefix)
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        root = self.bucket_path(bucket)
        rel, _, name_prefix = prefix.rpartition("/")
        rel = rel + "/" if rel else ""
        directory = root / rel
        # Every folder of the prefix must be a real folder inside the bucket, not a link.
        if rel and not all(
            self._is_bucket_dir(root / "/".join(rel.split("/")[: i + 1]))
            for i in range(rel.count("/"))
        ):
            return iter(())
        return self._walk(directory, rel, name_prefix, cursor, recurse)

    def _entries(
        self, bucket: str, prefix: str, delimiter: str | None, cursor: str | None
    ) -> Iterator[Entry]:
        """With ``/`` as delimiter only the prefix's own folder is read, however many objects
        lie deeper; any other delimiter folds a sorted recursive walk."""
        for key, path in self._walk_prefix(bucket, prefix, cursor, recurse=delimiter != "/"):
            if path is None:
                yield key, None
            else:
                yield key, functools.partial(self._info, key, str(path))

    # -- what only S3 can do; reported instead of failing --------------------------------------
    def encryption(self, bucket: str) -> Encryption:
        return Encryption(enabled=False, algorithm=None, supported=False)

    def set_encryption(
        self, bucket: str, algorithm: str | None, kms_key_id: str | None = None
    ) -> Encryption:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        raise Unsupported("the local backend does not encrypt at rest (use disk encryption)")

    def versioning(self, bucket: str) -> str:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        return "Unsupported"

    def _no_versions(self, bucket: str) -> Unsupported:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        return Unsupported("the local backend does not keep object versions")

    def set_versioning(self, bucket: str, enabled: bool) -> str:
        raise self._no_versions(bucket)

    def list_versions(self, bucket: str, key: str) -> list[ObjectVersion]:
        raise self._no_versions(bucket)

    def restore_version(self, bucket: str, key: str, version_id: str) -> ObjectInfo:
        raise self._no_versions(bucket)

    def presign(self, bucket: str, key: str, method: PresignMethod, expires_in: timedelta) -> str:
        raise Unsupported("the local backend cannot presign URLs itself")

    def get_notification_queues(self, bucket: str) -> list[dict[str, Any]]:
        raise Unsupported("the local backend has no notification targets of its own")

    def put_notification_queues(self, bucket: str, queues: list[dict[str, Any]]) -> None:
        raise Unsupported("the local backend has no notification targets of its own")


class S3ObjectStore(_Listings):
    """MinIO, AWS S3 or any S3-compatible store; path-style and plain http are settings."""

    kind: Literal["local", "s3"] = "s3"
    native_events = True
    signs_urls = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stores: dict[str, S3Store] = {}
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            s = self.settings
            self._client = boto3.client(
                "s3",
                endpoint_url=s.s3_endpoint,
                aws_access_key_id=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
                aws_secret_access_key=(
                    s.s3_secret_key.get_secret_value() if s.s3_secret_key else None
                ),
                region_name=s.s3_region,
                config=Config(
                    s3={"addressing_style": "path" if s.s3_path_style else "auto"},
                    connect_timeout=3,
                    read_timeout=30,
                    retries={"max_attempts": 2},
                ),
            )
        return self._client

    def _config(self) -> S3Config:
        s = self.settings
        cfg: S3Config = {"region": s.s3_region}
        if s.s3_endpoint:
            cfg["endpoint"] = s.s3_endpoint
        if s.s3_access_key and s.s3_secret_key:
            cfg["access_key_id"] = s.s3_access_key.get_secret_value()
            cfg["secret_access_key"] = s.s3_secret_key.get_secret_value()
        cfg["virtual_hosted_style_request"] = not s.s3_path_style
        return cfg

    def list_buckets(self) -> list[BucketInfo]:
        resp = self.client.list_buckets()
        return [BucketInfo(b["Name"], b.get("CreationDate")) for b in resp.get("Buckets", [])]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            validate_bucket_name(bucket)
            self.client.head_bucket(Bucket=bucket)
            return True
        except InvalidName:
            return False
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise

    def create_bucket(self, bucket: str) -> None:
        validate_bucket_name(bucket)
        # us-east-1 answers 200 to re-creating a bucket you own, so ask first.
        if self.bucket_exists(bucket):
            raise BucketExists(f"bucket '{bucket}' already exists")
        try:
            self.client.create_bucket(Bucket=bucket)
        except self.client.exceptions.BucketAlreadyOwnedByYou as exc:
            raise BucketExists(f"bucket '{bucket}' already exists") from exc
        except self.client.exceptions.BucketAlreadyExists as exc:
            raise BucketExists(f"bucket '{bucket}' already exists") from exc

    def delete_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        store = self.store(bucket)
        for batch in obstore.list(store, chunk_size=1000):
            paths = [m["path"] for m in batch]
            if paths:
                obstore.delete(store, paths)
        if self.versioning(bucket) != "Off":
            # A versioned bucket keeps every version and delete marker; S3 refuses to delete
            # the bucket (BucketNotEmpty) until they are gone too.
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket):
                doomed = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if doomed:
                    self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": doomed, "Quiet": True}
                    )
        self.client.delete_bucket(Bucket=bucket)
        self._stores.pop(bucket, None)

    # -- objects (obstore) ---------------------------------------------------------------------
    def _require(self, bucket: str) -> S3Store:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        return self.store(bucket)

    def _missing(self, bucket: str, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"object '{bucket}/{key}' does not exist")

    def put(self, bucket: str, key: str, data: bytes | Iterable[bytes] | Path) -> ObjectInfo:
        """The returned facts are those of the version this put wrote, not a later head's."""
        validate_key(key)
        size = 0
        payload: Any
        if isinstance(data, Path):
            payload, size = data, data.stat().st_size
        elif isinstance(data, bytes | bytearray | memoryview):
            payload, size = data, len(data)
        else:

            def counted() -> Iterator[bytes]:
                nonlocal size
                for block in data:
                    size += len(block)
                    yield block

            payload = counted()
        result = obstore.put(self._require(bucket), key, payload)
        etag = str(result.get("e_tag") or "").strip('"')
        return ObjectInfo(key, size, datetime.now(tz=UTC), etag, result.get("version"))

    async def put_stream_async(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None = None,
        part_size: int = 8 * 1024**2,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload from an async stream; multipart above ``part_size`` so nothing is buffered.

        If ``chunks`` raises, the multipart upload is aborted and no object appears.
        ``metadata`` becomes user metadata (``x-amz-meta-<name>``), which MinIO repeats in the
        object's bucket notification (``s3.object.userMetadata``).
        """
        validate_key(key)
        store = await asyncio.to_thread(self._require, bucket)
        # obstore sends every attribute that is not a standard header as user metadata.
        attributes: Any = {
            **(metadata or {}),
            **({"Content-Type": content_type} if content_type else {}),
        } or None
        # Read up to one part first: a small body goes up in one PUT (S3 then gives the plain
        # MD5 etag); a larger one continues as a multipart upload of the rest of the stream.
        head = bytearray()
        rest = chunks.__aiter__()
        total = 0
        exhausted = False
        while len(head) < part_size:
            try:
                head += await rest.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
        total = len(head)
        if exhausted:
            result = await obstore.put_async(
                store, key, bytes(head), attributes=attributes, use_multipart=False
            )
        else:

            async def whole() -> AsyncIterator[bytes]:
                nonlocal total
                yield bytes(head)
                head.clear()
                async for chunk in rest:
                    total += len(chunk)
                    yield chunk

            result = await obstore.put_async(
                store, key, whole(), attributes=attributes, chunk_size=part_size, use_multipart=True
            )
        etag = str(result.get("e_tag") or "").strip('"')
        return ObjectInfo(key, total, datetime.now(tz=UTC), etag, result.get("version"))

    def head(self, bucket: str, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            return ObjectInfo.from_meta(obstore.head(self._require(bucket), key))
        except FileNotFoundError as exc:
            raise self._missing(bucket, key) from exc

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
        validate_key(key)
        try:
            result = obstore.get(self._require(bucket), key)
            return ObjectInfo.from_meta(result.meta), bytes(result.bytes())
        except FileNotFoundError as exc:
            raise self._missing(bucket, key) from exc

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.get(bucket, key)[1]

    def get_stream(self, bucket: str, key: str, chunk_size: int = 8 * 1024**2) -> Iterator[bytes]:
        validate_key(key)
        try:
            result = obstore.get(self._require(bucket), key)
        except FileNotFoundError as exc:
            raise self._missing(bucket, key) from exc
        for chunk in result.stream(min_chunk_size=chunk_size):
            yield bytes(chunk)

    async def open_async(
        self, bucket: str, key: str, range_for: RangeFor | None = None
    ) -> ObjectReader:
        """Head, then a GET conditional on that etag: facts and bytes are one version."""
        validate_key(key)
        store = await asyncio.to_thread(self._require, bucket)
        for attempt in range(3):
            try:
                meta = await obstore.head_async(store, key)
            except FileNotFoundError as exc:
                raise self._missing(bucket, key) from exc
            info = ObjectInfo.from_meta(meta)
            byte_range = range_for(info.size) if range_for else None
            options: Any = {"if_match": meta.get("e_tag") or None}
            if byte_range is not None:
                options["range"] = byte_range
            try:
                result = await obstore.get_async(store, key, options=options)
            except FileNotFoundError as exc:
                raise self._missing(bucket, key) from exc
            except PreconditionError:
                if attempt == 2:
                    raise
                continue  # overwritten between head and get: take the new version whole
            content_type = (result.attributes or {}).get("Content-Type")
            stream = result.stream(min_chunk_size=READ_CHUNK_BYTES)

            async def chunks(stream: Any = stream) -> AsyncIterator[bytes]:
                async for chunk in stream:
                    yield bytes(chunk)

            return ObjectReader(info, byte_range, content_type, chunks(), lambda: None)
        raise AssertionError("unreachable")

    def local_file(self, bucket: str, key: str) -> Path | None:
        return None

    def delete(self, bucket: str, key: str) -> None:
        validate_key(key)
        obstore.delete(self._require(bucket), key)

    def _entries(
        self, bucket: str, prefix: str, delimiter: str | None, cursor: str | None
    ) -> Iterator[Entry]:
        """ListObjectsV2 as S3 defines it: ``prefix`` is any start of a key (obstore's list
        takes whole path segments only), folders are common prefixes, all in key order."""
        validate_prefix(prefix)
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            args["Delimiter"] = delimiter
        if cursor:
            args["StartAfter"] = cursor
        for page in self.client.get_paginator("list_objects_v2").paginate(**args):
            objects: Iterator[Entry] = (
                (o["Key"], functools.partial(_listed_info, o))
                for o in page.get("Contents", [])
                if not STAGING_RE.search(o["Key"])
            )
            folders: Iterator[Entry] = ((p["Prefix"], None) for p in page.get("CommonPrefixes", []))
            yield from heapq.merge(objects, folders, key=lambda item: item[0])

    def store(self, bucket: str) -> S3Store:
        if bucket not in self._stores:
            validate_bucket_name(bucket)
            self._stores[bucket] = S3Store(
                bucket,
                config=self._config(),
                client_options={"allow_http": self.settings.s3_allow_http},
            )
        return self._stores[bucket]

    def url(self, bucket: str, path: str = "") -> str:
        return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"

    def storage_options(self) -> dict[str, str]:
        s = self.settings
        opts = {"AWS_REGION": s.s3_region}
        if s.s3_endpoint:
            opts["AWS_ENDPOINT_URL"] = s.s3_endpoint
        if s.s3_access_key and s.s3_secret_key:
            opts["AWS_ACCESS_KEY_ID"] = s.s3_access_key.get_secret_value()
            opts["AWS_SECRET_ACCESS_KEY"] = s.s3_secret_key.get_secret_value()
        if s.s3_allow_http:
            opts["AWS_ALLOW_HTTP"] = "true"
        # Delta's commit needs an atomic put-if-absent; MinIO and moto honour etag conditions.
        opts["aws_conditional_put"] = "etag"
        return opts

    def ping(self) -> bool:
        try:
            self.client.list_buckets()
            return True
        except Exception:
            return False

    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> ObjectInfo:
        """Server-side copy (managed: multipart copy for large objects), no bytes through us."""
        validate_key(key)
        try:
            self.client.copy({"Bucket": bucket, "Key": key}, dst_bucket, key)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
            if _error_code(exc) == "NoSuchBucket":
                raise BucketNotFound(str(exc)) from exc
            raise
        return self.head(dst_bucket, key)

    def encryption(self, bucket: str) -> Encryption:
        try:
            resp = self.client.get_bucket_encryption(Bucket=bucket)
        except Exception as exc:
            if _error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return Encryption(enabled=False)
            raise
        rules = resp.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        for rule in rules:
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm"):
                return Encryption(enabled=True, algorithm=default["SSEAlgorithm"])
        return Encryption(enabled=False)

    def set_encryption(
        self, bucket: str, algorithm: str | None, kms_key_id: str | None = None
    ) -> Encryption:
        """The bucket's default encryption: ``AES256`` (SSE-S3), ``aws:kms`` (SSE-KMS, with
        ``kms_key_id`` the key's name or ARN) or None (off)."""
        self._require(bucket)
        if algorithm is None:
            self.client.delete_bucket_encryption(Bucket=bucket)
        else:
            default: dict[str, Any] = {"SSEAlgorithm": algorithm}
            if kms_key_id:
                default["KMSMasterKeyID"] = kms_key_id
            self.client.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": default}]
                },
            )
        return self.encryption(bucket)

    def versioning(self, bucket: str) -> str:
        """``Enabled``, ``Suspended`` or ``Off`` (never enabled), as S3 reports it."""
        self._require(bucket)
        return self.client.get_bucket_versioning(Bucket=bucket).get("Status") or "Off"

    def set_versioning(self, bucket: str, enabled: bool) -> str:
        self._require(bucket)
        status = "Enabled" if enabled else "Suspended"
        self.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
        return status

    def list_versions(self, bucket: str, key: str) -> list[ObjectVersion]:
        validate_key(key)
        self._require(bucket)
        out: list[ObjectVersion] = []
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for v in page.get("Versions", []):
                if v["Key"] == key:
                    out.append(
                        ObjectVersion(
                            key=key,
                            version_id=v["VersionId"],
                            size=int(v["Size"]),
                            last_modified=v["LastModified"],
                            etag=v["ETag"].strip('"'),
                            is_latest=bool(v["IsLatest"]),
                        )
                    )
            for m in page.get("DeleteMarkers", []):
                if m["Key"] == key:
                    out.append(
                        ObjectVersion(
                            key=key,
                            version_id=m["VersionId"],
                            size=0,
                            last_modified=m["LastModified"],
                            etag="",
                            is_latest=bool(m["IsLatest"]),
                            is_delete_marker=True,
                        )
                    )
        out.sort(key=lambda v: v.last_modified, reverse=True)
        return out

    def restore_version(self, bucket: str, key: str, version_id: str) -> ObjectInfo:
        """Copy an old version over the key: it becomes the newest version, nothing is lost."""
        validate_key(key)
        self._require(bucket)
        try:
            self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id},
            )
        except Exception as exc:
            if _error_code(exc) in ("NoSuchVersion", "NoSuchKey", "404", "InvalidArgument"):
                raise ObjectNotFound(
                    f"version '{version_id}' of '{bucket}/{key}' does not exist"
                ) from exc
            raise
        return self.head(bucket, key)

    def presign(self, bucket: str, key: str, method: PresignMethod, expires_in: timedelta) -> str:
        validate_key(key)
        return obstore.sign(self._require(bucket), method, key, expires_in)

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        validate_key(key)
        try:
            resp = self.client.get_object_tagging(Bucket=bucket, Key=key)
        except Exception as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise self._missing(bucket, key) from exc
            if _error_code(exc) == "NoSuchBucket":
                raise BucketNotFound(f"bucket '{bucket}' does not exist") from exc
            raise
        return {t["Key"]: t["Value"] for t in resp.get("TagSet", [])}

    def set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        """Replace the object's tags (``{}`` removes them), with S3's object tagging."""
        validate_tags(tags)
        self.head(bucket, key)  # a missing object is ObjectNotFound, as on the local backend
        if tags:
            tag_set = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
            self.client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set})
        else:
            self.client.delete_object_tagging(Bucket=bucket, Key=key)

    def get_notification_queues(self, bucket: str) -> list[dict[str, Any]]:
        resp = self.client.get_bucket_notification_configuration(Bucket=bucket)
        return list(resp.get("QueueConfigurations", []))

    def put_notification_queues(self, bucket: str, queues: list[dict[str, Any]]) -> None:
        """Replace the bucket's queue targets (MinIO: the NATS target), keeping other kinds."""
        current = self.client.get_bucket_notification_configuration(Bucket=bucket)
        config = {
            k: v
            for k, v in current.items()
            if k in ("TopicConfigurations", "LambdaFunctionConfigurations")
        }
        config["QueueConfigurations"] = queues
        self.client.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=config
        )


def _listed_info(o: Any) -> ObjectInfo:
    return ObjectInfo(o["Key"], int(o["Size"]), o["LastModified"], o["ETag"].strip('"'))


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


def open_object_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        return S3ObjectStore(settings)
    return LocalObjectStore(settings.storage_root)
