"""The web app: a static page at ``/`` and its files under ``/static``.

The page is a client of the JSON API (``/v1``) like any other: no build step, no data in
the HTML, nothing fetched from another origin. Every response carries a strict
Content-Security-Policy: scripts, styles and connections to this origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import APIError

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "web" / "static"
"""``api/web/static``: ``index.html``, its modules, styles and the vendored libraries."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
"""The only kinds of file served; anything else under the folder is not."""

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""No inline script or style, no other origin: a quoted reply cannot run code."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=HEADERS)


def static_file(relative: str) -> Path | None:
    """The file ``relative`` names under :data:`STATIC_DIR`, if it may be served.

    Hidden names, unknown suffixes and paths that leave the folder are refused.
    """
    parts = relative.split("/")
    if not relative or any(not p or p.startswith(".") for p in parts):
        return None
    root = STATIC_DIR.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path if path.suffix in CONTENT_TYPES else None


@router.get("/")
async def index() -> FileResponse:
    """The web app (sign in with an API key; the page then calls ``/v1``)."""
    return _file(STATIC_DIR / "index.html")


@router.get("/static/{relative:path}")
async def static(relative: str) -> FileResponse:
    """A file of the web app, with its content type; 404 for anything else."""
    path = static_file(relative)
    if path is None:
        raise APIError(404, f"no file {relative[:200]!r} in the web app", type="not_found_error")
    return _file(path)
