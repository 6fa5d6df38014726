"""The body-size limit as pure ASGI middleware: it counts the bytes actually received.

A declared ``Content-Length`` over the limit is refused at once; otherwise the body is read
(chunked or not) up to the limit, refused with 413 as soon as it passes it, and replayed to
the app only when complete. The app therefore never sees more than ``limit`` bytes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serac.serve.errors import error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(value.decode("latin-1") + " bytes", scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(f"more than {self.limit} bytes", scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, size: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"request body of {size}; the limit is {self.limit} (serve.max_body_bytes)",
                                  headers={"connection": "close"})
        await response(scope, receive, send)
