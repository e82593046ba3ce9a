"""Who may call: HTTP Basic (`--auth USER:PASS`) or a bearer token (`--token`), checked for every
request (API, page, static files, websockets) by one ASGI middleware. A browser that opens
`/?token=TOKEN` gets the token as a cookie, so the page's own requests carry it."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
COOKIE = "sdplay_token"


class Credentials:
    def __init__(self, auth: str | None, token: str | None) -> None:
        self.auth, self.token = auth, token

    def allows(self, scope: Scope) -> tuple[bool, bool]:
        """(allowed, allowed by the query token: the response then sets the cookie)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if self.auth and scheme.lower() == "basic" and _same(_basic(value), self.auth):
            return True, False
        if self.token:
            if scheme.lower() == "bearer" and _same(value.strip(), self.token):
                return True, False
            cookie = SimpleCookie(headers.get("cookie", ""))
            if COOKIE in cookie and _same(cookie[COOKIE].value, self.token):
                return True, False
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if any(_same(given, self.token) for given in query.get("token", [])):
                return True, True
        return False, False


class RequireAuth:
    """Refuses every request without the server's credentials: 401 with a one-line JSON detail."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app, self.credentials = app, credentials

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        allowed, set_cookie = self.credentials.allows(scope)
        if not allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _refuse(send, self.credentials.auth is not None)
            return
        if not set_cookie:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.credentials.token}; HttpOnly; SameSite=Strict; Path=/"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(send: Any, basic: bool) -> None:
    body = json.dumps({"detail": "authentication required: this server was started with --auth or --token"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if basic:
        headers.append((b"www-authenticate", b'Basic realm="sdplay"'))
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _basic(value: str) -> str:
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
