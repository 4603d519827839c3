"""The pack's web app, mounted by the Airflow plugin under ``/auxeng`` (or run with
``uvicorn auxeng.web:app``): the public pages behind signed links (survey, opt-outs, red-flag
acknowledgement) and the staff dashboard under ``/dashboard`` (Airflow users only).

One app, so one set of dependency overrides: every route takes "now" from
:func:`auxeng.web.common.clock`, and a test sets the time once with
``app.dependency_overrides[clock]``. Nothing touches the store, the settings, the secret key
or Airflow's API at import: the plugin manager imports this module in every Airflow process.
"""

from __future__ import annotations

from fastapi import FastAPI

from auxeng import __version__
from auxeng.web import flag_pages, optout_pages, survey_pages
from auxeng.web.dashboard import routes as dashboard

app = FastAPI(title="AuxEng follow-ups", version=__version__, docs_url=None, redoc_url=None)


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness of the pack's web app and the store schema it expects (no database access)."""
    from auxeng.store.db import head_revision

    return {"status": "ok", "version": __version__, "store_schema": head_revision()}


app.include_router(survey_pages.router)
app.include_router(optout_pages.router)
app.include_router(flag_pages.router)
app.include_router(dashboard.router)
app.add_exception_handler(dashboard.NotSignedIn, dashboard.login_page)
