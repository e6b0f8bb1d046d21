"""JSON request bodies as RFC 8259 has them, on every route: no ``NaN`` nor ``Infinity``.

FastAPI parses a JSON body with ``Request.json()`` (``json.loads``, which takes ``NaN``,
``Infinity`` and ``-Infinity``): a ``dict[str, Any]`` or ``float`` field then lets them
through, PostgreSQL's ``json`` refuses them (a 500) and SQLite stores ``null`` (a value
other than the one given). :class:`JSONBodyRoute`, the route class of every router,
parses with :func:`services.domain.inputs.parse_json` instead: such a body is a 422
naming where the constant stands; so is a number beyond a float's range (``1e400`` is
valid JSON, but ``json.loads`` makes it ``inf``). A normal body is parsed once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from services.domain.inputs import NotJSONNumber, parse_json

__all__ = ["JSONBodyRoute"]


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = parse_json(body)
            except NotJSONNumber as refused:
                error = f"{refused.constant} {refused.problem}"
                raise HTTPException(
                    422, [{"field": refused.where or "body", "error": error}]
                ) from None
        return self._json


class JSONBodyRoute(APIRoute):
    """An ``APIRoute`` whose JSON body refuses ``NaN``, ``Infinity`` and numbers beyond a
    float (422, naming where)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict
