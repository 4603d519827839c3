"""The pack's web apps: the public one (``auxeng.web:app``, for ``uvicorn auxeng.web:app``) and
the one the Airflow plugin mounts under ``/auxeng`` on the api-server.

- :func:`public_app`: the pages behind signed links (survey, opt-outs, red-flag
  acknowledgement) and ``/health``. Nothing in it needs Airflow: served on its own it has no
  dashboard (``/dashboard/…`` answers 404), so no request can reach Airflow's auth manager,
  which only the api-server initialises.
- :func:`airflow_app`: the same public pages plus the staff dashboard under ``/dashboard``
  (Airflow users only), with the dashboard's own HTML pages for every 4xx under ``/dashboard``.

Each is built once per process. Every route takes "now" from :func:`auxeng.web.common.clock`;
a test sets the time with ``dependency_overrides[clock]`` on the app it serves. Nothing touches
the store, the settings, the secret key or Airflow's API at import: the plugin manager imports
this module in every Airflow process.
"""

from __future__ import annotations

import functools

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from auxeng import __version__
from auxeng.web import flag_pages, optout_pages, survey_pages
from auxeng.web.dashboard import routes as dashboard

__all__ = ["airflow_app", "app", "public_app"]


def health() -> dict[str, str]:
    """Liveness of the pack's web app and the store schema it expects (no database access)."""
    from auxeng.store.db import head_revision

    return {"status": "ok", "version": __version__, "store_schema": head_revision()}


def _public_routes(app: FastAPI) -> FastAPI:
    app.add_api_route("/health", health, methods=["GET"])
    app.include_router(survey_pages.router)
    app.include_router(optout_pages.router)
    app.include_router(flag_pages.router)
    return app


def _new_app() -> FastAPI:
    return FastAPI(title="AuxEng follow-ups", version=__version__, docs_url=None, redoc_url=None)


@functools.cache
def public_app() -> FastAPI:
    """The public pages only (``auxeng.web:app``): what may face the internet on its own."""
    return _public_routes(_new_app())


@functools.cache
def airflow_app() -> FastAPI:
    """The public pages and the staff dashboard: the app the Airflow plugin mounts under ``/auxeng``."""
    app = _public_routes(_new_app())
    app.include_router(dashboard.router)
    app.add_exception_handler(dashboard.NotSignedIn, dashboard.login_page)
    app.add_exception_handler(StarletteHTTPException, dashboard.http_error_page)
    app.add_exception_handler(RequestValidationError, dashboard.validation_error_page)
    return app


app = public_app()
