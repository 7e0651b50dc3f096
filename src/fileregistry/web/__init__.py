"""The web UI at ``/ui``: server-rendered Jinja2 pages over the same services as the API.

``install(app)`` adds the UI's routers and its static files. Pages use a signed session cookie
(see :mod:`.session`), never the API's ``TOKEN`` header; every asset is served from
``/ui/static`` (nothing is loaded from another origin).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from fileregistry.web.templating import STATIC_DIR, STATIC_URL


def install(app: FastAPI) -> None:
    from fileregistry.web.routes import auth, filesystems, jobs, sources

    for module in (auth, sources, filesystems, jobs):
        app.include_router(module.router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def _front_door() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
