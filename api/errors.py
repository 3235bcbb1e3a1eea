"""Errors as clients see them: OpenAI-shaped bodies, 4xx for anything a client sent."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import httpx
import psycopg
import sqlalchemy.exc as sa_exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.errors import BackendUnavailableError
from api.protocol import json_type
from api.unavailable import classify

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error with a status, a type and a message a person can act on."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        """Describe the error; ``param`` names the offending field when there is one."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param


class ErrorDetail(BaseModel):
    """What went wrong, in OpenAI's shape."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why}
    for status, why in (
        (400, "The request is invalid; the message names the field."),
        (401, "No API key, or an unknown one."),
        (403, "The key may not do this (an admin route called with a user key)."),
        (404, "No such resource for this key (another user's look like missing ones)."),
        (413, "The body is larger than the server accepts."),
        (415, "The body is not JSON."),
        (422, "A field has the wrong type or is out of range; the message names it."),
        (
            503,
            "Saturated, or no model server or the database answers; retry after the "
            "Retry-After header.",
        ),
        (507, "The server's disk is full; nothing was recorded."),
    )
}
"""Declared on every route of the OpenAPI schema (``api.app.create_app``)."""


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


# Error types whose message reads better with the value that was sent.
_SHOW_INPUT = {
    "literal_error",
    "enum",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "string_pattern_mismatch",
    "finite_number",
}


def _problem(err: Mapping[str, Any]) -> str:
    kind = err.get("type")
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field; remove it"
    if kind == "string_pattern_mismatch":
        message = "must be an id made of letters, digits, '_' and '-' (at most 40)"
    else:
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    value = err.get("input")
    if kind in _SHOW_INPUT:
        if isinstance(value, bool | int | float) or value is None:
            message += f" (got {value!r})"
        elif isinstance(value, str):
            shown = value if len(value) <= 40 else value[:37] + "..."
            message += f" (got {shown!r})"
        else:
            message += f" (got {json_type(value)})"
    return message


def describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """A one-line description of what is wrong with a request, and the first bad field."""
    problems = []
    first: str | None = None
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        where = _loc(loc)
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            at = f" (at character {loc[-1]})" if loc and isinstance(loc[-1], int) else ""
            return f"the body is not valid JSON: {ctx.get('error', err.get('msg'))}{at}", None
        if loc == ("body",):
            if err.get("type") == "missing":
                return "the request needs a JSON body", None
            return f"the body must be a JSON object, not {json_type(err.get('input'))}", None
        first = first or where
        problems.append(f"{where}: {_problem(err)}")
    return "invalid request: " + "; ".join(problems), first


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body with this ``Content-Type`` as JSON (absent: it does)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map validation, HTTP and unexpected errors to JSON bodies."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.type, exc.param), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type")
        if not _is_json(content_type) and any(
            tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()
        ):
            message = (
                f"the body must be JSON sent with 'Content-Type: application/json', "
                f"not {content_type!r}"
            )
            return JSONResponse(error_body(message, "invalid_request_error"), status_code=415)
        message, param = describe_validation(exc)
        # OpenAI-compatible routes answer 400; Attune's own routes may declare 422.
        status = getattr(request.scope.get("route"), "validation_status", 400)
        return JSONResponse(error_body(message, "invalid_request_error", param), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = str(exc.detail) if exc.detail else "error"
        if message == "There was an error parsing the body":  # FastAPI's words
            message = "the body could not be parsed; send one well-formed JSON object"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /docs for the API"
        if exc.status_code == 405:
            message = "method not allowed on this route; see /docs for the API"
        return JSONResponse(error_body(message, kind), status_code=exc.status_code)

    @app.exception_handler(BackendUnavailableError)
    async def _unavailable(_: Request, exc: BackendUnavailableError) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc), "service_unavailable"),
            status_code=503,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    async def _store_fault(request: Request, exc: Exception) -> JSONResponse:
        fault = classify(exc)
        if fault is None:
            return _internal_error(exc)
        # The exception's type only: a driver's message may quote a statement's values.
        log.warning("%s unavailable: %s on %s", fault.cause, type(exc).__name__, request.url.path)
        headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s else None
        kind = "service_unavailable" if fault.status == 503 else "insufficient_storage"
        return JSONResponse(error_body(fault.message, kind), fault.status, headers=headers)

    # Store faults (``api.unavailable``): handled here rather than by the catch-all, which
    # Starlette re-raises to the server's log as a crash.
    faults = (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.Error, sqlite3.Error, OSError)
    for fault_type in (*faults, httpx.TransportError):
        app.add_exception_handler(fault_type, _store_fault)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if classify(exc) is not None:  # a store's own error type wrapping a fault
            return await _store_fault(request, exc)
        return _internal_error(exc)


def _internal_error(exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        error_body("internal error; the server log has the details", "server_error"),
        status_code=500,
    )
