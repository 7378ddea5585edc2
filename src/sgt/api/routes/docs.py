"""The API docs page (`GET /docs`) and the static files it and the dashboard load, all served
from the package: SGT machines may be offline, so no page refers to a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent.parent / "static"
STATIC_URL = "/static"
SWAGGER_UI = f"{STATIC_URL}/vendor/swagger-ui"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="SGT API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        # No badge fetched from the public validator service.
        swagger_ui_parameters={"validatorUrl": None},
    )


def mount_static_files(app: FastAPI) -> None:
    """Serve the vendored libraries and the dashboard's own scripts under /static."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
