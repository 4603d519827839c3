"""The host name each e2e process reports (``[core] hostname_callable``).

Two Celery workers on one machine share its host name; the run gives each its own
(``AUXENG_E2E_HOSTNAME``) so the task instances tell which worker ran them.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("AUXENG_E2E_HOSTNAME") or socket.getfqdn()
