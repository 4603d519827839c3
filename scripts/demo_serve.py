"""`make demo-serve`: serve the links `make demo` printed until Ctrl-C.

The pack's public pages (survey, opt-out, acknowledge: ``auxeng.web:app``) on the demo home's
store, with the key the demo signed its links with, at the demo's ``AUXENG_PUBLIC_URL``
(``http://localhost:8080/auxeng`` unless ``make demo`` ran with ``AUXENG_PORT`` or
``AUXENG_PUBLIC_URL``), mounted under its path as the plugin mounts them on Airflow. The pages
answer as at the demo's last evening (plus the time since this started), so its surveys are
still open whatever today's date. ``--port`` serves on another port (the links then need that
port instead).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit


def demo_settings(home: Path) -> dict[str, str]:
    """What ``make demo`` saved in ``home`` for serving its links."""
    env_file, key_file = home / "auxeng-demo.env", home / "auxeng-demo-secret-key"
    if not env_file.is_file() or not key_file.is_file():
        raise SystemExit(f"no finished demo in {home}: run `make demo` first")
    saved = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {**saved, "AUXENG_SECRET_KEY": key_file.read_text().strip()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--home", type=Path, default=Path(os.environ.get("AUXENG_DEMO_HOME", ".airflow-demo"))
    )
    parser.add_argument("--port", type=int, help="serve on this port instead of the links' one")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    saved = demo_settings(home)
    for name in [n for n in os.environ if n.startswith(("AUXENG_", "AIRFLOW_CONN_", "AIRFLOW__DATABASE__"))]:
        del os.environ[name]
    os.environ.update(
        AIRFLOW_HOME=str(home),  # the store is $AIRFLOW_HOME/auxeng.db, as in the demo
        AUXENG_SECRET_KEY=saved["AUXENG_SECRET_KEY"],
        AUXENG_PUBLIC_URL=saved["AUXENG_PUBLIC_URL"],
    )
    import uvicorn
    from fastapi import FastAPI

    from auxeng.web import app
    from auxeng.web.common import clock

    public_url = saved["AUXENG_PUBLIC_URL"].rstrip("/")
    link_base = urlsplit(public_url)
    demo_now = datetime.fromisoformat(saved["AUXENG_DEMO_AS_OF"])
    started = datetime.now(tz=UTC)
    app.dependency_overrides[clock] = lambda: demo_now + (datetime.now(tz=UTC) - started)
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.mount(link_base.path or "/", app)
    port = args.port or link_base.port or (443 if link_base.scheme == "https" else 80)
    served = public_url if port == link_base.port else f"http://127.0.0.1:{port}{link_base.path}"
    print(
        f"==> Serving the links of the demo in {home} at {served} (pages as at {demo_now:%Y-%m-%d %H:%M} UTC)\n"
        f"==> Open the survey link make demo printed; Ctrl-C stops",
        flush=True,
    )
    uvicorn.run(root, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    sys.exit(main())
