"""The pack's web apps: ``auxeng.web:app`` is the public one (survey, opt-out and acknowledge
pages behind signed links), for ``uvicorn auxeng.web:app``; the Airflow plugin mounts
:func:`auxeng.web.application.airflow_app` (the same pages and the staff dashboard)."""

from auxeng.web.application import airflow_app, app, public_app

__all__ = ["airflow_app", "app", "public_app"]
