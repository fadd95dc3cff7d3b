"""Headers every answer carries, so the page cannot be framed, sniffed into another type, or
leak its address (and a presigned link's signature) in a Referer, and so an injected string can
never run as script: the policy allows scripts and styles from this origin's files only (no
inline ``<script>``, ``<style>``, ``on…=`` handler, ``style=`` attribute or ``eval``). The page's
code therefore lives in ``static/*.js`` and ``static/*.css``; ``tests/test_security_headers.py``
keeps it that way.

A route may send its own ``Content-Security-Policy`` (the API docs page, which loads Swagger UI
from its CDN); the middleware only adds the headers an answer does not already have.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in HEADERS if k not in names),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
