"""Object-level API: browse, streaming upload and download (with ``Range``), delete, presign.

Bodies stream in both directions: an upload goes to the store in parts as it arrives (multipart
on S3) and a download is sent as the store yields it, so a 256 MB object never sits in memory.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect

from lakehouse.objectstore import (
    InvalidName,
    InvalidTags,
    ObjectInfo,
    ObjectNotFound,
    validate_key,
)
from lakehouse.routes import SYSTEM_BUCKET
from lakehouse.tiers import TierMap, locate
from storage_service import authz
from storage_service.access import Caller, Runtime, principal
from storage_service.authz import Principal
from storage_service.events import OBJECT_CREATED_PUT, PRINCIPAL_METADATA
from storage_service.http_ranges import parse_range
from storage_service.presign import BadSignature
from storage_service.runtime import ServiceRuntime

router = APIRouter(prefix="/api", dependencies=[Depends(principal)])
presigned_router = APIRouter(include_in_schema=False)

OBJECT_PATH = "/buckets/{name}/objects/{key:path}"
# S3 asks a client to back off with 503 SlowDown and a delay; so do we when uploads are full.
RETRY_AFTER_SECONDS = 1


class PresignRequest(BaseModel):
    key: str
    method: Literal["GET", "PUT"] = "GET"
    expires_in: int = 3600


class ObjectView(BaseModel):
    key: str
    size: int
    last_modified: str
    etag: str
    content_type: str


class ObjectPage(BaseModel):
    bucket: str
    prefix: str
    folders: list[str]
    objects: list[ObjectView]
    next_cursor: str | None


class Uploaded(BaseModel):
    bucket: str
    key: str
    size: int
    etag: str


class Presigned(BaseModel):
    url: str
    method: str
    expires_at: str


class TooLarge(Exception):
    pass


class Tag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Key: str
    Value: str = ""


class Tagging(BaseModel):
    """An object's tags in S3's ``Tagging`` shape (``GetObjectTagging``'s JSON, as boto3 has
    it), so ``?tagging`` reads and writes what S3 clients already produce."""

    model_config = ConfigDict(extra="forbid")
    TagSet: list[Tag] = Field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, t in enumerate(self.TagSet):
            if t.Key in out:
                raise InvalidTags(f"TagSet.{i}.Key: tag key {t.Key!r} is given twice")
            out[t.Key] = t.Value
        return out

    @classmethod
    def of(cls, tags: dict[str, str]) -> Tagging:
        return cls(TagSet=[Tag(Key=k, Value=v) for k, v in sorted(tags.items())])


def exact_key(request: Request, key: str) -> str:
    """The key as sent. Starlette's ``{key:path}`` pattern ends in ``$``, which matches before
    a trailing newline, so ``a%0A`` reaches a handler as ``a``: a write would land under
    another key than the one asked for. Refuse any key the path does not end with."""
    if not request.scope["path"].endswith(key):
        raise InvalidName("object key must not contain control characters (tab, newline, NUL…)")
    return validate_key(key)


def content_type_for(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _object_view(info: ObjectInfo) -> ObjectView:
    return ObjectView(
        key=info.key,
        size=info.size,
        last_modified=info.last_modified.isoformat(),
        etag=info.etag,
        content_type=content_type_for(info.key),
    )


@router.get("/buckets/{name}/objects")
def list_objects(
    name: str,
    rt: Runtime,
    who: Caller,
    prefix: str = "",
    delimiter: str | None = "/",
    cursor: str | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> ObjectPage:
    shown = authz.listing(who, name, prefix, delimiter or None)
    if shown.folders is not None:
        if not rt.store.bucket_exists(name):
            raise HTTPException(404, detail=f"bucket '{name}' does not exist")
        return ObjectPage(
            bucket=name, prefix=prefix, folders=shown.folders, objects=[], next_cursor=None
        )
    page = rt.store.list_page(
        name, prefix=shown.prefix, delimiter=delimiter or None, cursor=cursor or None, limit=limit
    )
    return ObjectPage(
        bucket=name,
        prefix=prefix,
        folders=page.folders,
        objects=[_object_view(o) for o in page.objects],
        next_cursor=page.next_cursor,
    )


# -- upload ------------------------------------------------------------------------------------
async def upload(
    rt: ServiceRuntime, name: str, key: str, request: Request, who: Principal
) -> Uploaded:
    """Stream the request body into the store; the size limit is enforced while streaming.

    The upload holds its bucket's gate for its whole length, so the bucket cannot be deleted
    or renamed under it, and one of a bounded number of upload slots. Its event names ``who``.
    """
    validate_key(key)
    if name == SYSTEM_BUCKET:
        raise HTTPException(403, detail=f"'{SYSTEM_BUCKET}' is written only through /api/routes")
    limit = rt.settings.max_object_bytes
    too_large = f"object is larger than the {limit}-byte limit"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=too_large)
    if rt.uploads.locked():
        raise HTTPException(
            503,
            detail=f"{rt.settings.max_concurrent_uploads} uploads are in flight; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    async with rt.uploads:
        with rt.gate.writing(name):
            if not await asyncio.to_thread(rt.store.bucket_exists, name):
                raise HTTPException(404, detail=f"bucket '{name}' does not exist")
            total = 0

            async def body() -> AsyncIterator[bytes]:
                nonlocal total
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise TooLarge()
                    if chunk:
                        yield chunk

            if rt.watcher is not None:
                rt.watcher.hint_start(name, key, OBJECT_CREATED_PUT, who.id)
            try:
                info = await rt.store.put_stream_async(
                    name,
                    key,
                    body(),
                    content_type=request.headers.get("content-type"),
                    part_size=rt.settings.upload_part_bytes,
                    metadata={PRINCIPAL_METADATA: who.id},
                )
            except BaseException as exc:
                if rt.watcher is not None:
                    rt.watcher.hint_cancel(name, key)
                if isinstance(exc, TooLarge):
                    raise HTTPException(413, detail=too_large) from exc
                if isinstance(exc, ClientDisconnect):
                    raise HTTPException(
                        400, detail="upload interrupted; nothing was stored"
                    ) from exc
                raise
            await asyncio.to_thread(rt.announce_write, name, key, info)
    return Uploaded(bucket=name, key=key, size=info.size, etag=info.etag)


@router.put(OBJECT_PATH, status_code=201, response_model=Uploaded)
async def put_object(name: str, key: str, request: Request, rt: Runtime, who: Caller) -> Response:
    exact_key(request, key)
    authz.obj(who, name, key)
    if "tagging" in request.query_params:
        return await put_tagging(rt, name, key, request)
    info = await upload(rt, name, key, request, who)
    return _uploaded(info)


# -- tags (S3's ?tagging sub-resource) -----------------------------------------------------------
def get_tagging(rt: ServiceRuntime, name: str, key: str) -> Response:
    """``GET ...?tagging``: the tags of an object, wherever lifecycle put it (tags are what
    lifecycle's tag filters match, so they travel with a transitioned object)."""
    where = locate(rt.store, name, key)
    tags = rt.store.get_tags(where[0], where[1])
    return JSONResponse(Tagging.of(tags).model_dump())


async def put_tagging(rt: ServiceRuntime, name: str, key: str, request: Request) -> Response:
    """``PUT ...?tagging`` with ``{"TagSet": [{"Key": ..., "Value": ...}]}`` replaces the
    object's tags; an invalid set is a 422 naming the field."""
    if name == SYSTEM_BUCKET:
        raise HTTPException(403, detail=f"'{SYSTEM_BUCKET}' is written only through /api/routes")
    try:
        body = Tagging.model_validate_json(await request.body())
    except ValidationError as exc:
        raise HTTPException(
            422,
            detail=[
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc
    tags = body.as_dict()

    def write() -> None:
        with rt.gate.writing(name):
            where = locate(rt.store, name, key)
            rt.store.set_tags(where[0], where[1], tags)

    await asyncio.to_thread(write)
    return Response(status_code=204)


def _uploaded(info: Uploaded) -> Response:
    return JSONResponse(info.model_dump(), status_code=201, headers={"ETag": f'"{info.etag}"'})


# -- download ----------------------------------------------------------------------------------
def _headers(info: ObjectInfo) -> dict[str, str]:
    return {
        "ETag": f'"{info.etag}"',
        "Last-Modified": format_datetime(info.last_modified.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
    }


def content_disposition(key: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name, so any key downloads by name."""
    name = key.rsplit("/", 1)[-1]
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def download(
    rt: ServiceRuntime, name: str, key: str, request: Request, attachment: bool = False
) -> Response:
    """Headers and body come from one opened version of the object, so an overwrite racing
    the download can never make the body disagree with ``Content-Length`` or ``ETag``."""
    validate_key(key)
    header = request.headers.get("range")
    reader = await rt.store.open_async(name, key, lambda size: parse_range(header, size))
    headers = _headers(reader.info)
    status = 200
    if reader.byte_range is not None:
        start, end = reader.byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{reader.info.size}"
        status = 206
    headers["Content-Length"] = str(reader.length)
    if attachment:
        headers["Content-Disposition"] = content_disposition(key)
    media_type = reader.content_type or content_type_for(key)
    if reader.length == 0:
        reader.close()
        return Response(b"", status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(reader, status_code=status, headers=headers, media_type=media_type)


@router.get(OBJECT_PATH)
async def get_object(name: str, key: str, request: Request, rt: Runtime, who: Caller) -> Response:
    exact_key(request, key)
    authz.obj(who, name, key)
    if "tagging" in request.query_params:
        return await asyncio.to_thread(get_tagging, rt, name, key)
    try:
        return await download(rt, name, key, request)
    except ObjectNotFound:
        where = TierMap(rt.store).resolve(name, key)  # transitioned by lifecycle (issue 12)
        if where is None:
            raise
        response = await download(rt, where[0], where[1], request)
        response.headers["x-amz-storage-class"] = where[2]
        return response


@router.head(OBJECT_PATH)
def head_object(name: str, key: str, request: Request, rt: Runtime, who: Caller) -> Response:
    exact_key(request, key)
    authz.obj(who, name, key)
    storage_class = "STANDARD"
    try:
        info = rt.store.head(name, key)
    except ObjectNotFound:
        where = TierMap(rt.store).resolve(name, key)  # transitioned by lifecycle (issue 12)
        if where is None:
            raise
        info, storage_class = rt.store.head(where[0], where[1]), where[2]
    headers = _headers(info)
    headers["x-amz-storage-class"] = storage_class
    headers["Content-Length"] = str(info.size)
    headers["Content-Type"] = content_type_for(key)
    return Response(status_code=200, headers=headers)


@router.delete(OBJECT_PATH, status_code=204)
def delete_object(name: str, key: str, request: Request, rt: Runtime, who: Caller) -> Response:
    exact_key(request, key)
    authz.obj(who, name, key)
    if name == SYSTEM_BUCKET:
        raise HTTPException(403, detail=f"'{SYSTEM_BUCKET}' is changed only through /api/routes")
    if "tagging" in request.query_params:  # S3's DeleteObjectTagging: the object stays
        with rt.gate.writing(name):
            where = locate(rt.store, name, key)
            rt.store.set_tags(where[0], where[1], {})
        return Response(status_code=204)
    with rt.gate.writing(name):
        rt.store.head(name, key)  # a missing object is a clear 404, not a silent success
        rt.store.delete(name, key)
        rt.announce_delete(name, key, who.id)
    return Response(status_code=204)


# -- presigned URLs ----------------------------------------------------------------------------
@router.post("/buckets/{name}/presign")
def presign(name: str, body: PresignRequest, rt: Runtime, who: Caller) -> Presigned:
    """Only inside the caller's scope; a tenant's link lives at most
    ``TENANT_PRESIGN_MAX_SECONDS`` and (local backend) names the tenant, so it stops working
    when the tenant is disabled or the key leaves its scope."""
    validate_key(body.key)
    authz.obj(who, name, body.key)
    most = authz.presign_max_seconds(who, rt.settings.presign_max_seconds)
    if not 1 <= body.expires_in <= most:
        raise HTTPException(422, detail=f"expires_in must be between 1 and {most} seconds")
    if not rt.store.bucket_exists(name):
        raise HTTPException(404, detail=f"bucket '{name}' does not exist")
    if body.method == "GET":
        rt.store.head(name, body.key)  # a link to nothing is a 404 now, not a 404 later
    if rt.store.signs_urls:
        url = rt.store.presign(name, body.key, body.method, timedelta(seconds=body.expires_in))
    else:
        # Built on the configured public address: a request's Host header is the caller's say.
        base = rt.settings.effective_public_url
        tenant = None if who.is_admin else who.id
        url = rt.signer.sign(base, body.method, name, body.key, body.expires_in, tenant)
    expires_at = datetime.now(tz=UTC) + timedelta(seconds=body.expires_in)
    return Presigned(url=url, method=body.method, expires_at=expires_at.isoformat())


def _verify(rt: ServiceRuntime, method: str, name: str, key: str, request: Request) -> Principal:
    """The link's signer: the admin, or the tenant it names, checked again now."""
    try:
        tenant_id = rt.signer.verify(method, name, key, dict(request.query_params))
    except BadSignature as exc:
        raise HTTPException(403, detail=str(exc)) from exc
    who = authz.ADMIN
    if tenant_id is not None:
        tenant = next((t for t in rt.tenants.all() if t.id == tenant_id), None)
        if tenant is None or tenant.disabled:
            raise authz.Denied(f"the tenant of this link, '{tenant_id}', is gone or disabled")
        who = Principal(tenant.id, tenant)
    request.state.principal = who
    authz.obj(who, name, key)
    return who


@presigned_router.get("/presigned/{name}/{key:path}")
async def presigned_get(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    exact_key(request, key)
    _verify(rt, "GET", name, key, request)
    return await download(rt, name, key, request, attachment=True)


@presigned_router.head("/presigned/{name}/{key:path}")
async def presigned_head(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    exact_key(request, key)
    who = _verify(rt, "GET", name, key, request)  # a GET link may also be probed with HEAD
    return await asyncio.to_thread(head_object, name, key, request, rt, who)


@presigned_router.put("/presigned/{name}/{key:path}")
async def presigned_put(name: str, key: str, request: Request) -> Response:
    rt: ServiceRuntime = request.app.state.runtime
    exact_key(request, key)
    who = _verify(rt, "PUT", name, key, request)
    info = await upload(rt, name, key, request, who)
    return _uploaded(info)
