"""The pack's web app, mounted by the Airflow plugin under ``/auxeng`` (or run with
``uvicorn auxeng.web:app``). Later features add their pages here."""

from __future__ import annotations

from fastapi import FastAPI

from auxeng import __version__

app = FastAPI(title="AuxEng follow-ups", version=__version__, docs_url=None, redoc_url=None)


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness of the pack's web app and the store schema it expects (no database access)."""
    from auxeng.store.db import head_revision

    return {"status": "ok", "version": __version__, "store_schema": head_revision()}
