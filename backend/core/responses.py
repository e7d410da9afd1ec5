"""JSON responses rendered by orjson (datetimes, UUIDs and the like handled natively), and a
``send`` that remembers the status a response went out with."""

from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import Message, Send


class JsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class StatusRecorder:
    """An ASGI ``send`` that passes every message on and remembers the response's status (0
    until it starts), for middleware that reports on the response after the app is done."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)
