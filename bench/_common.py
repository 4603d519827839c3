"""Helpers shared by the benchmarks (not a benchmark itself: `make bench` skips `_*.py`)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.support, for the scratch database
    sys.path.append(str(REPO))


def print_profile(label: str, profiler: cProfile.Profile, limit: int = 20) -> None:
    """The top functions of a profile, by own time and by cumulative time."""
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(sort).print_stats(limit)
        body = out.getvalue()
        start = body.find("   ncalls")
        print(f"\n== profile: {label} (by {sort}, top {limit})")
        print(body[start:].rstrip() if start >= 0 else body.rstrip())


def verdict(failures: list[str]) -> int:
    """Print PASS or FAIL with the missed targets; the benchmark's exit code."""
    print()
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS")
    return 0


def postgres_database(admin_url: str) -> AbstractContextManager[str]:
    """A scratch database ``auxeng_bench_<pid>``, dropped (WITH FORCE) on exit."""
    from tests.support.scratch_pg import scratch_database

    return scratch_database(admin_url, f"auxeng_bench_{os.getpid()}")


@contextmanager
def profiled(enabled: bool, label: str, profiles: list[tuple[str, cProfile.Profile]]) -> Iterator[None]:
    """Profile the block into ``profiles`` when ``enabled`` (``--profile``)."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiles.append((label, profiler))


def schema_urls(base: str, prefix: str, sizes: Iterable[int]) -> dict[int, str]:
    """One schema ``<prefix>_<size>`` per size inside the bench's own database ``base`` (created
    here, dropped with the database), each as a URL whose search path is that schema."""
    from sqlalchemy import create_engine, text

    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for n in sizes:
            schema = f"{prefix}_{n}"
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            urls[n] = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
    admin.dispose()
    return urls
