"""The web app's files: served at ``/`` and ``/static``, typed, under a strict CSP."""

from __future__ import annotations

import re

import pytest

from api.routes.web import CSP, STATIC_DIR
from tests.conftest import Api


async def test_the_page_is_served_with_a_strict_policy(api: Api) -> None:
    r = await api.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in CSP and "unsafe" not in CSP and "http" not in CSP
    assert '<script type="module" src="/static/app.js">' in r.text


async def test_every_file_the_page_loads_is_there_with_its_type(api: Api) -> None:
    files = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for path in files:
        if path.suffix not in types:
            continue
        rel = path.relative_to(STATIC_DIR).as_posix()
        r = await api.client.get(f"/static/{rel}")
        assert r.status_code == 200, rel
        assert r.headers["content-type"].startswith(types[path.suffix]), rel
        assert r.headers["content-security-policy"] == CSP
    # Every module import points at a file that exists (no CDN, no build step).
    for path in files:
        if path.suffix == ".js":
            for target in re.findall(
                r"""(?:from|import\()\s*["'](\.[^"']+)["']""", path.read_text()
            ):
                assert (path.parent / target).resolve().is_file(), (path.name, target)
            text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a namespace
            assert "http://" not in text and "https://" not in text, path.name


def test_js_and_css_modules_stay_small() -> None:
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".js", ".css", ".html") and "vendor" not in path.parts:
            assert len(path.read_text().splitlines()) < 400, path


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/nope.js",
        "/static/../routes/web.py",
        "/static/%2e%2e/routes/web.py",
        "/static/pages/../../routes/web.py",
        "/static/.hidden.js",
        "/static/pages//chat.js",
    ],
)
async def test_nothing_else_is_served(api: Api, path: str) -> None:
    r = await api.client.get(path)
    assert r.status_code == 404, (path, r.text[:200])
    assert "def " not in r.text
