"""Object-level API: browse, streaming upload and download (with ``Range``), delete, presign.

Bodies stream in both directions: an upload goes to the store in parts as it arrives (multipart
on S3) and a download is sent as the store yields it, so a 256 MB object never sits in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from lakehouse.objectstore import LocalObjectStore, ObjectInfo, validate_key
from storage_service.access import Runtime, require_key
from storage_service.events import OBJECT_CREATED_PUT
from storage_service.http_ranges import parse_range
from storage_service.presign import BadSignature
from storage_service.runtime import ServiceRuntime

router = APIRouter(prefix="/api", dependencies=[Depends(require_key)])
presigned_router = APIRouter(include_in_schema=False)

OBJECT_PATH = "/buckets/{name}/objects/{key:path}"
COALESCE_BYTES = 1024**2
DOWNLOAD_CHUNK_BYTES = 1024**2


class PresignRequest(BaseModel):
    key: str
    method: Literal["GET", "PUT"] = "GET"
    expires_in: int = 3600


class TooLarge(Exception):
    pass


def content_type_for(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _etag(rt: ServiceRuntime, bucket: str, info: ObjectInfo) -> str:
    """Local backend: the MD5 the events carry, so a user sees one etag per object."""
    if isinstance(rt.store, LocalObjectStore):
        try:
            return rt.local_etag(bucket, info.key)
        except FileNotFoundError:
            return info.etag
    return info.etag


def _object_json(rt: ServiceRuntime, bucket: str, info: ObjectInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "size": info.size,
        "last_modified": info.last_modified.isoformat(),
        "etag": _etag(rt, bucket, info),
        "content_type": content_type_for(info.key),
    }


def _not_renaming(rt: ServiceRuntime, name: str) -> None:
    if rt.renamer.busy(name):
        raise HTTPException(409, detail=f"bucket '{name}' is being renamed; try again when done")


@router.get("/buckets/{name}/objects")
def list_objects(
    name: str,
    rt: Runtime,
    prefix: str = "",
    delimiter: str | None = "/",
    cursor: str | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    page = rt.store.list_page(
        name, prefix=prefix, delimiter=delimiter or None, cursor=cursor or None, limit=limit
    )
    return {
        "bucket": name,
        "prefix": prefix,
        "folders": page.folders,
        "objects": [_object_json(rt, name, o) for o in page.objects],
        "next_cursor": page.next_cursor,
    }


# -- upload ------------------------------------------------------------------------------------
async def upload(rt: ServiceRuntime, name: str, key: str, request: Request) -> dict[str, Any]:
    """Stream the request body into the store; the size limit is enforced while streaming."""
    validate_key(key)
    _not_renaming(rt, name)
    limit = rt.settings.max_object_bytes
    too_large = f"object is larger than the {limit}-byte limit"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=too_large)
    if not await asyncio.to_thread(rt.store.bucket_exists, name):
        raise HTTPException(404, detail=f"bucket '{name}' does not exist")
    local = isinstance(rt.store, LocalObjectStore)
    md5 = hashlib.md5(usedforsecurity=False) if local else None
    total = 0

    async def body() -> AsyncIterator[bytes]:
        # The server hands us ~64 KiB pieces; the store is faster fed 1 MiB at a time.
        nonlocal total
        parts: list[bytes] = []
        pending = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise TooLarge()
            parts.append(chunk)
            pending += len(chunk)
            if pending >= COALESCE_BYTES:
                yield await digest(b"".join(parts))
                parts.clear()
                pending = 0
        if parts or total == 0:
            yield await digest(b"".join(parts))

    async def digest(block: bytes) -> bytes:
        # hashlib drops the GIL on large buffers: hashing on a worker thread keeps the event
        # loop free to read the next piece of the body meanwhile.
        if md5 is not None:
            await asyncio.to_thread(md5.update, block)
        return block

    if rt.watcher is not None:
        rt.watcher.hint_start(name, key, OBJECT_CREATED_PUT)
    try:
        result = await rt.store.put_stream_async(
            name,
            key,
            body(),
            content_type=request.headers.get("content-type"),
            part_size=rt.settings.upload_part_bytes,
        )
    except BaseException as exc:
        if rt.watcher is not None:
            rt.watcher.hint_cancel(name, key)
        if isinstance(exc, TooLarge):
            raise HTTPException(413, detail=too_large) from exc
        if isinstance(exc, ClientDisconnect):
            raise HTTPException(400, detail="upload interrupted; nothing was stored") from exc
        raise
    if local:
        assert md5 is not None and isinstance(rt.store, LocalObjectStore)
        etag = md5.hexdigest()
        try:
            st = rt.store.local_path(name, key).stat()
            if rt.watcher is not None:
                rt.watcher.hint_done(name, key, st.st_size, st.st_mtime_ns, etag)
        except FileNotFoundError:  # deleted already by someone else
            if rt.watcher is not None:
                rt.watcher.hint_cancel(name, key)
    else:
        etag = str(result.get("e_tag") or "").strip('"')
        rt.catalog.record_write(name, key, total, etag)
    return {"bucket": name, "key": key, "size": total, "etag": etag}


@router.put(OBJECT_PATH, status_code=201)
async def put_object(name: str, key: str, request: Request, rt: Runtime) -> Response:
    info = await upload(rt, name, key, request)
    return _json(info, 201, {"ETag": f'"{info["etag"]}"'})


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


# -- download ----------------------------------------------------------------------------------
def _headers(rt: ServiceRuntime, name: str, info: ObjectInfo) -> dict[str, str]:
    return {
        "ETag": f'"{_etag(rt, name, info)}"',
        "Last-Modified": format_datetime(info.last_modified.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
    }


async def download(
    rt: ServiceRuntime, name: str, key: str, request: Request, attachment: bool = False
) -> Response:
    validate_key(key)
    info = await asyncio.to_thread(rt.store.head, name, key)
    headers = await asyncio.to_thread(_headers, rt, name, info)
    byte_range = parse_range(request.headers.get("range"), info.size)
    status = 200
    if byte_range is not None:
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        status = 206
    length = (byte_range[1] - byte_range[0]) if byte_range else info.size
    headers["Content-Length"] = str(length)
    if attachment:
        headers["Content-Disposition"] = f'attachment; filename="{key.rsplit("/", 1)[-1]}"'
    if length == 0:
        return Response(b"", status_code=status, headers=headers, media_type=content_type_for(key))
    result = await rt.store.open_async(name, key, byte_range)
    media_type = (result.attributes or {}).get("Content-Type") or content_type_for(key)

    async def chunks() -> AsyncIterator[memoryview]:
        async for chunk in result.stream(min_chunk_size=DOWNLOAD_CHUNK_BYTES):
            yield memoryview(chunk)  # no copy: the server writes from the store's buffer

    return StreamingResponse(chunks(), status_code=status, headers=headers, media_type=media_type)


@router.get(OBJECT_PATH)
async def get_object(name: str, key: str, request: Request, rt: Runtime) -> Response:
    return await download(rt, name, key, request)


@router.head(OBJECT_PATH)
def head_object(name: str, key: str, rt: Runtime) -> Response:
    validate_key(key)
    info = rt.store.head(name, key)
    headers = _headers(rt, name, info)
    headers["Content-Length"] = str(info.size)
    headers["Content-Type"] = content_type_for(key)
    return Response(status_code=200, headers=headers)


@router.delete(OBJECT_PATH, status_code=204)
def delete_object(name: str, key: str, rt: Runtime) -> Response:
    validate_key(key)
    _not_renaming(rt, name)
    rt.store.head(name, key)  # a missing object is a clear 404, not a silent success
    rt.store.delete(name, key)
    rt.catalog.record_delete(name, key)
    return Response(status_code=204)


# -- presigned URLs ----------------------------------------------------------------------------
@router.post("/buckets/{name}/presign")
def presign(name: str, body: PresignRequest, request: Request, rt: Runtime) -> dict[str, Any]:
    validate_key(body.key)
    most = rt.settings.presign_max_seconds
    if not 1 <= body.expires_in <= most:
        raise HTTPException(422, detail=f"expires_in must be between 1 and {most} seconds")
    if not rt.store.bucket_exists(name):
        raise HTTPException(404, detail=f"bucket '{name}' does not exist")
    if body.method == "GET":
        rt.store.head(name, body.key)  # a link to nothing is a 404 now, not a 404 later
    if isinstance(rt.store, LocalObjectStore):
        url = rt.signer.sign(str(request.base_url), body.method, name, body.key, body.expires_in)
    else:
        url = rt.store.presign(name, body.key, body.method, timedelta(seconds=body.expires_in))
    expires_at = datetime.now(tz=UTC) + timedelta(seconds=body.expires_in)
    return {"url": url, "method": body.method, "expires_at": expires_at.isoformat()}


def _verify(rt: ServiceRuntime, method: str, name: str, key: str, request: Request) -> None:
    try:
        rt.signer.verify(method, name, key, dict(request.query_params))
    except BadSignature as exc:
        raise HTTPException(403, detail=str(exc)) from exc


@presigned_router.get("/presigned/{name}/{key:path}")
async def presigned_get(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    _verify(rt, "GET", name, key, request)
    return await download(rt, name, key, request, attachment=True)


@presigned_router.head("/presigned/{name}/{key:path}")
async def presigned_head(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    _verify(rt, "GET", name, key, request)  # a GET link may also be probed with HEAD
    return await asyncio.to_thread(head_object, name, key, rt)


@presigned_router.put("/presigned/{name}/{key:path}")
async def presigned_put(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    _verify(rt, "PUT", name, key, request)
    info = await upload(rt, name, key, request)
    return _json(info, 201, {"ETag": f'"{info["etag"]}"'})
