"""Errors as clients see them: OpenAI-shaped bodies, 4xx for anything a client sent."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error with a status, a type and a message a person can act on."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None
    ) -> None:
        """Describe the error; ``param`` names the offending field when there is one."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """A one-line description of what is wrong with a request, and the first bad field."""
    problems = []
    first: str | None = None
    for err in exc.errors():
        where = _loc(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return f"the body is not valid JSON: {ctx.get('error', err.get('msg'))}", None
        if err.get("type") == "missing" and where == "body":
            return "the request needs a JSON body", None
        first = first or where
        problems.append(f"{where}: {err.get('msg')}")
    return "invalid request: " + "; ".join(problems), first


def install_error_handlers(app: FastAPI) -> None:
    """Map validation, HTTP and unexpected errors to JSON bodies."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.type, exc.param), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /docs for the API"
        if exc.status_code == 405:
            message = "method not allowed on this route; see /docs for the API"
        return JSONResponse(error_body(message, kind), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal error; the server log has the details", "server_error"),
            status_code=500,
        )
