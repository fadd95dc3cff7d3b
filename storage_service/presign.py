"""Presigned URLs the service signs and serves itself (local backend).

S3 stores sign their own URLs; a local folder has no one to do it, so the service signs
``method, bucket, key, expiry`` with an HMAC key that never leaves the state dir and checks the
signature when the URL comes back. The key is separate from the API key so that rotating one
does not silently re-validate or invalidate the other.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from lakehouse.settings import Settings

EXPIRES_PARAM = "X-Lakewire-Expires"
SIGNATURE_PARAM = "X-Lakewire-Signature"
METHOD_PARAM = "X-Lakewire-Method"
TENANT_PARAM = "X-Lakewire-Tenant"


class BadSignature(Exception):
    """Tampered, expired or for another method: the caller answers 403."""


def signing_key_file(settings: Settings) -> Path:
    return settings.state_dir / "presign_key"


def load_or_create_signing_key(settings: Settings) -> bytes:
    path = signing_key_file(settings)
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _signature(
        self, method: str, bucket: str, key: str, expires: int, tenant: str | None
    ) -> str:
        fields = (method, bucket, key, str(expires)) + ((tenant,) if tenant else ())
        message = "\n".join(fields).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(
        self,
        base_url: str,
        method: str,
        bucket: str,
        key: str,
        expires_in: int,
        tenant: str | None = None,
    ) -> str:
        """``tenant``: the link carries (and its signature covers) the tenant that made it, so
        the service re-checks that tenant's status and scope each time the link is used."""
        expires = int(time.time()) + expires_in
        params: dict[str, str | int] = {METHOD_PARAM: method, EXPIRES_PARAM: expires}
        if tenant:
            params[TENANT_PARAM] = tenant
        params[SIGNATURE_PARAM] = self._signature(method, bucket, key, expires, tenant)
        query = urlencode(params)
        return f"{base_url.rstrip('/')}/presigned/{bucket}/{quote(key)}?{query}"

    def verify(
        self, method: str, bucket: str, key: str, params: dict[str, str], now: float | None = None
    ) -> str | None:
        """The tenant the link was made for (None: the admin), once the signature holds."""
        tenant = params.get(TENANT_PARAM) or None
        try:
            expires = int(params[EXPIRES_PARAM])
            signature = params[SIGNATURE_PARAM]
            signed_method = params[METHOD_PARAM]
        except (KeyError, ValueError) as exc:
            raise BadSignature("presigned URL is missing its expiry or signature") from exc
        expected = self._signature(signed_method, bucket, key, expires, tenant)
        if not hmac.compare_digest(expected, signature):
            raise BadSignature("presigned URL signature does not match")
        if signed_method != method:
            raise BadSignature(f"presigned URL is for {signed_method}, not {method}")
        if (now if now is not None else time.time()) > expires:
            raise BadSignature("presigned URL has expired")
        return tenant
