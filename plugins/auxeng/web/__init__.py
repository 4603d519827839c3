"""The pack's web app (public survey pages and the staff dashboard): ``auxeng.web:app``."""

from auxeng.web.application import app

__all__ = ["app"]
