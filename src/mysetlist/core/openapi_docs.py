"""`/docs` (Swagger UI) and `/redoc` with a Content-Security-Policy of their own.

FastAPI's pages load their scripts and styles from a CDN and start them with an inline
script, which the CSP every other HTML page gets (our own scripts only) forbids. These two
pages show the public API description and no user data, so their policy allows that CDN and
the inline start, and nothing else beyond our own origin."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (
    f"default-src 'self'; script-src 'self' {CDN} 'unsafe-inline'; style-src 'self' {CDN}"
    f" 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; worker-src blob:;"
    " object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _with_csp(get_swagger_ui_html(openapi_url="/openapi.json", title=request.app.title))


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _with_csp(get_redoc_html(openapi_url="/openapi.json", title=request.app.title))
