"""One object-store abstraction over obstore (Rust ``object_store``), local directory or S3.

obstore is the engine delta-rs and polars use, so the service, the pipelines and notebooks all
see the same bytes, etags and listing order. Bucket management is not part of obstore's model;
the local backend maps a bucket to a folder and the S3 backend uses the S3 API (boto3) for the
bucket-level calls only.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import obstore
from obstore.store import LocalStore, S3Store

from lakehouse.settings import Settings

BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
# obstore's LocalStore stages a put as "<path>#<n>" and renames it into place.
STAGING_RE = re.compile(r"#\d+$")


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


class InvalidRange(StorageError, ValueError):
    pass


class KeyConflict(StorageError):
    """A folder-per-bucket store cannot hold both ``a`` and ``a/b`` (S3 can): refuse clearly."""


_staging_counter = itertools.count()


def validate_bucket_name(name: str) -> str:
    """Check the S3 naming rules we enforce on both backends, naming the rule that is broken."""
    if not 3 <= len(name) <= 63:
        raise InvalidName(f"bucket name must be 3-63 characters long (got {len(name)})")
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise InvalidName("bucket name may contain only lowercase letters, digits and hyphens")
    if not BUCKET_NAME_RE.match(name):
        raise InvalidName("bucket name must start and end with a lowercase letter or digit")
    return name


def validate_key(key: str) -> str:
    """Reject keys that could escape a bucket folder or that S3 would refuse."""
    if not key:
        raise InvalidName("object key must not be empty")
    if "\x00" in key:
        raise InvalidName("object key must not contain NUL")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidName(f"object key must be at most {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidName("object key must not start with '/'")
    if any(part in ("..", ".") for part in key.split("/")):
        raise InvalidName("object key must not contain '.' or '..' segments")
    if key.endswith("/") or "//" in key:
        raise InvalidName("object key must not contain empty path segments")
    if STAGING_RE.search(key):
        raise InvalidName("object key must not end in '#<digits>' (reserved for staging)")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str
    version: str | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ObjectInfo:
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


class ObjectStore(Protocol):
    """What every backend offers; the service, pipelines and CLI are written against this."""

    kind: str

    def list_buckets(self) -> list[BucketInfo]: ...
    def bucket_exists(self, bucket: str) -> bool: ...
    def create_bucket(self, bucket: str) -> None: ...
    def delete_bucket(self, bucket: str) -> None: ...
    def store(self, bucket: str) -> Any: ...
    def url(self, bucket: str, path: str = "") -> str: ...
    def storage_options(self) -> dict[str, str]: ...
    def ping(self) -> bool: ...
    def encryption(self, bucket: str) -> Encryption: ...
    def versioning(self, bucket: str) -> str: ...
    def set_versioning(self, bucket: str, enabled: bool) -> str: ...
    def list_versions(self, bucket: str, key: str) -> list[ObjectVersion]: ...
    def restore_version(self, bucket: str, key: str, version_id: str) -> ObjectInfo: ...
    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> None: ...
    def presign(self, bucket: str, key: str, method: str, expires_in: timedelta) -> str: ...


class _Objects:
    """Object-level calls shared by both backends: they differ only in ``store(bucket)``."""

    def store(self, bucket: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def bucket_exists(self, bucket: str) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _require(self, bucket: str) -> Any:
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        return self.store(bucket)

    def _check_writable(self, bucket: str, key: str) -> None:
        """Backends with limits on which keys can coexist override this."""

    def put(self, bucket: str, key: str, data: bytes | Iterable[bytes] | Path) -> ObjectInfo:
        validate_key(key)
        store = self._require(bucket)
        self._check_writable(bucket, key)
        payload: Any = data
        if isinstance(data, Path):
            payload = data
        obstore.put(store, key, payload)
        return self.head(bucket, key)

    async def put_async(
        self, bucket: str, key: str, data: AsyncIterator[bytes] | bytes
    ) -> ObjectInfo:
        validate_key(key)
        store = self._require(bucket)
        self._check_writable(bucket, key)
        await obstore.put_async(store, key, data)
        return await self.head_async(bucket, key)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            return ObjectInfo.from_meta(obstore.head(self._require(bucket), key))
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc

    async def head_async(self, bucket: str, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            return ObjectInfo.from_meta(await obstore.head_async(self._require(bucket), key))
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc

    def get_bytes(self, bucket: str, key: str) -> bytes:
        validate_key(key)
        try:
            return bytes(obstore.get(self._require(bucket), key).bytes())
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc

    def get_stream(self, bucket: str, key: str, chunk_size: int = 8 * 1024**2) -> Iterator[bytes]:
        validate_key(key)
        try:
            result = obstore.get(self._require(bucket), key)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
        for chunk in result.stream(min_chunk_size=chunk_size):
            yield bytes(chunk)

    async def open_async(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> Any:
        """Start a streaming read (``result.stream()``), optionally of ``[start, end)`` only.

        The caller iterates the result, so a large object is never held in memory.
        """
        validate_key(key)
        store = self._require(bucket)
        options: dict[str, Any] = {}
        if byte_range is not None:
            options["range"] = byte_range
        try:
            return await obstore.get_async(store, key, options=options or None)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc

    async def put_stream_async(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None = None,
        part_size: int = 8 * 1024**2,
    ) -> dict[str, Any]:
        """Upload from an async stream; multipart above ``part_size`` so nothing is buffered.

        If ``chunks`` raises, the multipart upload is aborted and no object appears.
        """
        validate_key(key)
        store = self._require(bucket)
        self._check_writable(bucket, key)
        attributes = {"Content-Type": content_type} if content_type and self.kind == "s3" else None
        # Read up to one part first: a small body goes up in one PUT (S3 then gives the plain
        # MD5 etag); a larger one continues as a multipart upload of the rest of the stream.
        head = bytearray()
        rest = chunks.__aiter__()
        exhausted = False
        while len(head) < part_size:
            try:
                head += await rest.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
        if exhausted:
            return await obstore.put_async(
                store, key, bytes(head), attributes=attributes, use_multipart=False
            )

        async def whole() -> AsyncIterator[bytes]:
            yield bytes(head)
            async for chunk in rest:
                yield chunk

        return await obstore.put_async(
            store, key, whole(), attributes=attributes, chunk_size=part_size, use_multipart=True
        )

    def delete(self, bucket: str, key: str) -> None:
        validate_key(key)
        obstore.delete(self._require(bucket), key)

    # -- what only S3 can do; the local backend reports it instead of failing ------------------
    def encryption(self, bucket: str) -> Encryption:
        return Encryption(enabled=False, algorithm=None, supported=False)

    def versioning(self, bucket: str) -> str:
        self._require(bucket)
        return "Unsupported"

    def set_versioning(self, bucket: str, enabled: bool) -> str:
        self._require(bucket)
        raise Unsupported(f"the {self.kind} backend does not keep object versions")

    def list_versions(self, bucket: str, key: str) -> list[ObjectVersion]:
        self._require(bucket)
        raise Unsupported(f"the {self.kind} backend does not keep object versions")

    def restore_version(self, bucket: str, key: str, version_id: str) -> ObjectInfo:
        self._require(bucket)
        raise Unsupported(f"the {self.kind} backend does not keep object versions")

    def presign(self, bucket: str, key: str, method: str, expires_in: timedelta) -> str:
        raise Unsupported(f"the {self.kind} backend cannot presign URLs itself")

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        store = self._require(bucket)
        for batch in obstore.list(store, prefix=prefix or None, chunk_size=1000):
            for meta in batch:
                if STAGING_RE.search(meta["path"]):
                    continue
                yield ObjectInfo.from_meta(meta)

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = "/",
        cursor: str | None = None,
        limit: int = 1000,
    ) -> Listing:
        """One page of a listing, sorted by key; ``cursor`` is the last key of the previous page.

        Folders (common prefixes) and objects are merged in key order so a page boundary can
        fall anywhere and the next page starts strictly after the cursor.
        """
        store = self._require(bucket)
        entries: list[tuple[str, ObjectInfo | None]] = []
        seen_folders: set[str] = set()
        stream = obstore.list(store, prefix=prefix or None, offset=cursor, chunk_size=1000)
        for batch in stream:
            for meta in batch:
                key = meta["path"]
                if STAGING_RE.search(key) or (cursor is not None and key <= cursor):
                    continue
                rest = key[len(prefix) :]
                if delimiter and delimiter in rest:
                    folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                    if folder in seen_folders or (cursor is not None and folder <= cursor):
                        continue
                    seen_folders.add(folder)
                    entries.append((folder, None))
                else:
                    entries.append((key, ObjectInfo.from_meta(meta)))
                if len(entries) > limit:
                    break
            if len(entries) > limit:
                break
        page, more = entries[:limit], len(entries) > limit
        # Folders are emitted as a sort key "<folder>\uffff" so the cursor skips their contents.
        next_cursor = None
        if more and page:
            last, info = page[-1]
            next_cursor = last if info is not None else last + "\U0010ffff"
        return Listing(
            folders=[k for k, info in page if info is None],
            objects=[info for _, info in page if info is not None],
            next_cursor=next_cursor,
        )


class LocalObjectStore(_Objects):
    """Embedded default: ``<data_dir>/storage/<bucket>/<key>``."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._stores: dict[str, LocalStore] = {}

    def bucket_path(self, bucket: str) -> Path:
        validate_bucket_name(bucket)
        return self.root / bucket

    def list_buckets(self) -> list[BucketInfo]:
        out = []
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and BUCKET_NAME_RE.match(child.name):
                created = datetime.fromtimestamp(child.stat().st_ctime, tz=UTC)
                out.append(BucketInfo(child.name, created))
        return out

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self.bucket_path(bucket).is_dir()
        except InvalidName:
            return False

    def create_bucket(self, bucket: str) -> None:
        path = self.bucket_path(bucket)
        try:
            path.mkdir()
        except FileExistsError as exc:
            raise BucketExists(f"bucket '{bucket}' already exists") from exc

    def delete_bucket(self, bucket: str) -> None:
        path = self.bucket_path(bucket)
        if not path.is_dir():
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        shutil.rmtree(path)
        self._stores.pop(bucket, None)

    def store(self, bucket: str) -> LocalStore:
        if bucket not in self._stores:
            self._stores[bucket] = LocalStore(self.bucket_path(bucket))
        return self._stores[bucket]

    def url(self, bucket: str, path: str = "") -> str:
        return (
            (self.bucket_path(bucket) / path).as_uri()
            if path
            else self.bucket_path(bucket).as_uri()
        )

    def local_path(self, bucket: str, key: str) -> Path:
        validate_key(key)
        return self.bucket_path(bucket) / key

    def _check_writable(self, bucket: str, key: str) -> None:
        root = self.bucket_path(bucket)
        path = root / key
        if path.is_dir():
            raise KeyConflict(f"'{key}' is a folder in bucket '{bucket}'; choose another key")
        for parent in path.relative_to(root).parents:
            if parent != Path(".") and (root / parent).is_file():
                raise KeyConflict(
                    f"'{parent.as_posix()}' is an object in bucket '{bucket}', so it cannot also "
                    f"be a folder on the local backend"
                )

    def delete(self, bucket: str, key: str) -> None:
        """Delete, then drop folders left empty: S3 has no empty 'folders' and neither do we."""
        super().delete(bucket, key)
        root = self.bucket_path(bucket)
        parent = (root / key).parent
        while parent != root:
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                break
            parent = parent.parent

    def _walk_sorted(
        self, directory: Path, rel: str, name_prefix: str, cursor: str | None, recurse: bool
    ) -> Iterator[tuple[str, os.DirEntry[str] | None]]:
        """Keys under ``directory`` in S3 (sorted) order; folders as ``(key/, None)`` if not
        recursing. The filesystem lists in arbitrary order, so each level is sorted here."""
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        named = []
        for entry in entries:
            if not entry.name.startswith(name_prefix) or STAGING_RE.search(entry.name):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            named.append((rel + entry.name + ("/" if is_dir else ""), is_dir, entry))
        named.sort(key=lambda item: item[0])
        for key, is_dir, entry in named:
            if is_dir:
                if cursor is not None and cursor >= key + "\U0010ffff":
                    continue  # the whole folder was on earlier pages
                if recurse:
                    yield from self._walk_sorted(Path(entry.path), key, "", cursor, True)
                elif (cursor is None or key > cursor) and any(os.scandir(entry.path)):
                    yield key, None
            elif cursor is None or key > cursor:
                yield key, entry

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = "/",
        cursor: str | None = None,
        limit: int = 1000,
    ) -> Listing:
        """Local folders list in arbitrary order, so walk them sorted; with ``/`` as delimiter
        only the prefix's own folder is read, however many objects lie deeper."""
        if not self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket '{bucket}' does not exist")
        if delimiter not in (None, "/"):
            return super().list_page(bucket, prefix, delimiter, cursor, limit)
        root = self.bucket_path(bucket)
        rel, _, name_prefix = prefix.rpartition("/")
        rel = rel + "/" if rel else ""
        walk = self._walk_sorted(root / rel, rel, name_prefix, cursor, recurse=delimiter is None)
        entries = list(itertools.islice(walk, limit + 1))
        page, more = entries[:limit], len(entries) > limit
        objects = []
        for key, entry in page:
            if entry is not None:
                st = entry.stat()
                objects.append(
                    ObjectInfo(
                        key=key,
                        size=st.st_size,
                        last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
                        # the etag obstore's LocalStore gives: inode-mtime(µs)-size in hex
                        etag=f"{st.st_ino:x}-{st.st_mtime_ns // 1000:x}-{st.st_size:x}",
                    )
                )
        next_cursor = None
        if more and page:
            last, entry = page[-1]
            next_cursor = last if entry is not None else last + "\U0010ffff"
        return Listing(
            folders=[k for k, e in page if e is None], objects=objects, next_cursor=next_cursor
        )

    def storage_options(self) -> dict[str, str]:
        return {}

    def ping(self) -> bool:
        return self.root.is_dir()

    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> None:
        """Stream a file into another bucket under the same key, appearing atomically.

        The copy is written under a ``#<n>`` staging name (skipped by listings and the watcher)
        and renamed into place, so no reader or event ever sees half a file.
        """
        src = self.local_path(bucket, key)
        if not self.bucket_exists(dst_bucket):
            raise BucketNotFound(f"bucket '{dst_bucket}' does not exist")
        dst = self.local_path(dst_bucket, key)
        self._check_writable(dst_bucket, key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging = dst.with_name(f"{dst.name}#{os.getpid()}{next(_staging_counter)}")
        try:
            shutil.copyfile(src, staging)
            os.replace(staging, dst)
        except FileNotFoundError as exc:
            staging.unlink(missing_ok=True)
            raise ObjectNotFound(f"object '{bucket}/{key}' does not exist") from exc
        except BaseException:
            staging.unlink(missing_ok=True)
            raise


class S3ObjectStore(_Objects):
    """MinIO, AWS S3 or any S3-compatible store; path-style and plain http are settings."""

    kind = "s3"

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

    def _config(self) -> dict[str, Any]:
        s = self.settings
        cfg: dict[str, Any] = {"region": s.s3_region}
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
        self.client.delete_bucket(Bucket=bucket)
        self._stores.pop(bucket, None)

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

    def copy_object(self, bucket: str, key: str, dst_bucket: str) -> None:
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

    def presign(self, bucket: str, key: str, method: str, expires_in: timedelta) -> str:
        validate_key(key)
        return obstore.sign(self._require(bucket), method, key, expires_in)  # type: ignore[arg-type]

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


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


def open_object_store(settings: Settings) -> LocalObjectStore | S3ObjectStore:
    if settings.storage_backend == "s3":
        return S3ObjectStore(settings)
    return LocalObjectStore(settings.storage_root)
