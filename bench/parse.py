"""DagBag parse time of the pack's DAG files against as many trivial TaskFlow DAG files.

Targets (CONVENTIONS.md, "A DAG file parses in milliseconds once Airflow is imported"):
the warm parse time of every pack file is < 100 ms (median), the pack's total is at
most 1.2 times the trivial files' total (medians), and the pack's cold total (the first
parse of every file in a fresh process, importing ``auxeng`` included) is at most 1.5
times the trivial files' cold total (medians over ``--cold-rounds`` fresh processes).

Everything runs in one process, after Airflow is imported, the way a DAG processor
child does: Airflow modules that a file imports are pre-imported (like
``_pre_import_airflow_modules``), then each file goes through ``DagBag.process_file``,
which re-executes it under its unique module name every time.

* **first** is the first parse of a file in this process: for the first pack file it
  includes importing the shared ``auxeng`` package. Informational (one sample).
* **cold** (gated): ``--cold-rounds`` pairs of fresh processes, one parsing every pack
  file once, one every trivial file once, each after ``import airflow``, the same
  pre-imports and one untimed parse of a throw-away trivial file (Airflow's own lazy
  set-up). The pack's side includes importing ``auxeng`` (DAG files import only
  ``auxeng.dagkit``, ``settings`` and ``vocabulary``; the task modules are imported
  inside the tasks). On macOS the dag processor fork+execs, so every parse is cold.
* **median / max** are over ``--rounds`` warm parses, pack and trivial files
  interleaved so that drift affects both alike. The targets use the medians.

The pack's own modules are byte-compiled first (``compileall``, into their ``__pycache__``),
so that they load from ``.pyc`` like Airflow's do: where ``PYTHONDONTWRITEBYTECODE`` is set
(this machine) Python would otherwise compile them from source in every cold process, a cost
a deployment does not pay and Airflow's own modules are not charged. DAG files are compiled
from source at every parse on both sides, as a dag processor does where bytecode writing is off.

``--breakdown`` then measures what the pack's extra warm time is made of: the pack's files
without their params, without their schedules (``schedule=None``), without both, and trivial
files with as many chained tasks as each pack DAG has (Airflow's per-task cost).

Usage: ``.venv/bin/python bench/parse.py [--rounds N] [--cold-rounds N] [--breakdown]`` (or ``make bench``).
Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"

RATIO_TARGET = 1.2
# Cold, the pack pays once for importing its light modules (auxeng.dagkit, settings, vocabulary)
# and for Airflow modules a trivial file does not touch (assets, watchers, triggers): a few
# milliseconds over ~9 files that each cost a few more than a trivial one.
COLD_RATIO_TARGET = 1.5
FILE_TARGET_MS = 100.0

TRIVIAL_DAG = '''\
"""A trivial TaskFlow DAG, the baseline of bench/parse.py."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def {dag_id}():
    @task
    def extract() -> int:
        return {n}

    @task
    def load(value: int) -> int:
        return value + 1

    load(extract())


{dag_id}()
'''


def _prepare_environment(home: Path) -> None:
    """A throw-away Airflow home; must run before anything imports airflow."""
    for name in [
        n for n in os.environ if n.startswith(("AUXENG_", "AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_VAR_"))
    ]:
        del os.environ[name]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))


def _write_trivial_dags(folder: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        dag_id = f"bench_trivial_{n}"
        path = folder / f"{dag_id}.py"
        path.write_text(TRIVIAL_DAG.format(dag_id=dag_id, n=n))
        paths.append(path)
    return paths


class Parser:
    """Times ``DagBag.process_file`` on one file; checks every parse really re-executed it."""

    def __init__(self) -> None:
        from airflow.dag_processing.dagbag import DagBag

        self._dagbag = DagBag
        self._last_dags: dict[str, object] = {}

    def parse(self, path: Path) -> float:
        """Seconds to parse ``path`` once with a fresh DagBag; raises on import errors."""
        bag = self._dagbag(dag_folder=str(path), collect_dags=False, load_op_links=False)
        gc.collect()
        start = time.perf_counter()
        found = bag.process_file(str(path), only_if_updated=False, safe_mode=True)
        elapsed = time.perf_counter() - start
        if bag.import_errors:
            raise SystemExit(f"{path}: import errors:\n{bag.import_errors}")
        if len(found) != 1:
            raise SystemExit(f"{path}: expected exactly one DAG, found {[d.dag_id for d in found]}")
        dag = found[0]
        if self._last_dags.get(str(path)) is dag:
            raise SystemExit(f"{path}: DagBag returned a cached DAG object: the file was not re-executed")
        self._last_dags[str(path)] = dag
        return elapsed

    def last_dag(self, path: Path):
        """The DAG the last parse of ``path`` produced."""
        return self._last_dags[str(path)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="warm parses per file (default 15)")
    parser.add_argument(
        "--cold-rounds", type=int, default=5, help="fresh processes per side for the cold parse (default 5)"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure pack variants: what the extra warm time is made of",
    )
    parser.add_argument("--cold-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        return _cold_child([Path(p) for p in args.cold_child])

    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-parse-"))
    try:
        home = workdir / "airflow-home"
        home.mkdir()
        _prepare_environment(home)
        if not compileall.compile_dir(str(PLUGINS / "auxeng"), quiet=1):
            raise SystemExit("could not byte-compile plugins/auxeng")

        started = time.perf_counter()
        import airflow
        import airflow.sdk  # noqa: F401
        from airflow.utils.file import iter_airflow_imports

        airflow_import_s = time.perf_counter() - started

        if "auxeng" in sys.modules:
            raise SystemExit("auxeng was imported together with airflow: the cold numbers would be wrong")

        pack_files = sorted(DAGS.glob("*.py"))
        if not pack_files:
            raise SystemExit(f"no DAG files in {DAGS}")
        trivial_dir = workdir / "trivial_dags"
        trivial_dir.mkdir()
        trivial_files = _write_trivial_dags(trivial_dir, len(pack_files))
        warmup_file = _write_trivial_dags(workdir, 1)[0]

        # What the dag processor does before parsing a file: pre-import the airflow modules it names.
        import importlib

        for path in [*pack_files, *trivial_files]:
            for module in iter_airflow_imports(str(path)):
                importlib.import_module(module)

        timer = Parser()
        # One untimed parse of a throw-away trivial file: Airflow's own one-time lazy set-up
        # (importers, policies, DAG machinery) is then charged to neither side.
        timer.parse(warmup_file)

        first: dict[Path, float] = {}
        modules_before = set(sys.modules)
        for path in pack_files:  # the first one of these imports auxeng
            first[path] = timer.parse(path)
        new_packages = _new_packages(modules_before)
        for path in trivial_files:
            first[path] = timer.parse(path)
        if "auxeng" not in sys.modules:
            raise SystemExit("the pack's DAG files did not import auxeng: nothing cold was measured")

        warm: dict[Path, list[float]] = {p: [] for p in [*pack_files, *trivial_files]}
        for round_no in range(args.rounds):
            pairs = list(zip(pack_files, trivial_files, strict=True))
            for pack, trivial in pairs:
                order = (pack, trivial) if round_no % 2 == 0 else (trivial, pack)
                for path in order:
                    warm[path].append(timer.parse(path))

        cold = _cold_rounds(pack_files, trivial_files, warmup_file, args.cold_rounds)
        code = _report(pack_files, trivial_files, first, warm, airflow_import_s, args.rounds, cold)
        if args.breakdown:
            _breakdown(timer, pack_files, trivial_files, workdir, args.rounds)
        print()
        print(
            "Packages the first parse of the pack imported (modules per top-level package):\n"
            + textwrap.fill(", ".join(f"{name} {count}" for name, count in new_packages), width=100)
        )
        return code
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cold_child(paths: list[Path]) -> int:
    """In a fresh process: set Airflow up as the parent does, then time one parse of each file."""
    if str(PLUGINS) not in sys.path:  # the environment itself is inherited from the parent
        sys.path.insert(0, str(PLUGINS))
    started = time.perf_counter()
    import airflow
    import airflow.sdk  # noqa: F401
    from airflow.utils.file import iter_airflow_imports

    airflow_s = time.perf_counter() - started
    if "auxeng" in sys.modules:
        raise SystemExit("auxeng was imported together with airflow: the cold numbers would be wrong")
    import importlib

    warmup, files = paths[0], paths[1:]
    for path in paths:
        for module in iter_airflow_imports(str(path)):
            importlib.import_module(module)
    timer = Parser()
    timer.parse(warmup)
    total = sum(timer.parse(path) for path in files)
    print(json.dumps({"total": total, "airflow": airflow_s}))
    return 0


def _cold_rounds(
    pack_files: list[Path], trivial_files: list[Path], warmup_file: Path, rounds: int
) -> dict[str, list[float]]:
    """Seconds for the first parse of every file of each side, one fresh process per side and round."""
    cold: dict[str, list[float]] = {"pack": [], "trivial": []}
    sides = {"pack": pack_files, "trivial": trivial_files}
    for round_no in range(rounds):
        order = ("pack", "trivial") if round_no % 2 == 0 else ("trivial", "pack")
        for side in order:
            result = subprocess.run(
                [sys.executable, __file__, "--cold-child", str(warmup_file), *map(str, sides[side])],
                capture_output=True,
                text=True,
                check=False,
                env=os.environ.copy(),
            )
            if result.returncode != 0:
                raise SystemExit(f"cold parse of the {side} files failed:\n{result.stderr[-3000:]}")
            cold[side].append(json.loads(result.stdout.strip().splitlines()[-1])["total"])
    return cold


def _without(source: str, *, params: bool, schedule: bool) -> str:
    """``source`` with its ``@dag(...)`` params dropped and/or its schedule set to None."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dag":
            if params:
                node.keywords = [k for k in node.keywords if k.arg != "params"]
            for keyword in node.keywords:
                if schedule and keyword.arg == "schedule":
                    keyword.value = ast.Constant(None)
    return ast.unparse(tree)


def _chained_tasks(dag_id: str, count: int) -> str:
    """A trivial DAG of ``count`` chained tasks (the first-task shape of TRIVIAL_DAG)."""
    tasks = "".join(f"    @task\n    def step_{n}() -> int:\n        return {n}\n\n" for n in range(count))
    chain = " >> ".join(f"step_{n}()" for n in range(count))
    return (
        "from datetime import datetime\n\nfrom airflow.sdk import dag, task\n\n\n"
        f"@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)\ndef {dag_id}():\n"
        f"{tasks}    {chain}\n\n\n{dag_id}()\n"
    )


def _breakdown(
    timer: Parser, pack_files: list[Path], trivial_files: list[Path], workdir: Path, rounds: int
) -> None:
    """Warm totals of pack variants, interleaved like the main measurement, against the same trivial files."""
    variants: dict[str, list[Path]] = {"pack": pack_files}
    for name, params, schedule in (
        ("pack without params", True, False),
        ("pack without schedules", False, True),
        ("pack without both", True, True),
    ):
        folder = workdir / name.replace(" ", "_")
        folder.mkdir()
        variants[name] = []
        for path in pack_files:
            target = folder / path.name
            target.write_text(_without(path.read_text(), params=params, schedule=schedule))
            variants[name].append(target)
    folder = workdir / "trivial_chained"
    folder.mkdir()
    variants["trivial, pack's task counts"] = []
    for n, path in enumerate(pack_files):
        tasks = len(timer.last_dag(path).tasks)
        target = folder / f"bench_chained_{n}.py"
        target.write_text(_chained_tasks(f"bench_chained_{n}", tasks))
        variants["trivial, pack's task counts"].append(target)
    variants["trivial"] = trivial_files
    times: dict[Path, list[float]] = {p: [] for files in variants.values() for p in files}
    for files in variants.values():
        for path in files:
            timer.parse(path)  # untimed first parse
    names = list(variants)
    for round_no in range(rounds):
        for index in range(len(pack_files)):
            for name in names if round_no % 2 == 0 else reversed(names):
                path = variants[name][index]
                times[path].append(timer.parse(path))
    totals = {name: sum(statistics.median(times[p]) for p in files) for name, files in variants.items()}
    print()
    print(f"Breakdown (warm, sum of medians over {rounds} interleaved rounds):")
    for name, total in totals.items():
        print(
            f"  {name:<30}{total * 1000:8.2f} ms  {total / totals['trivial']:5.2f}x trivial"
            f"  {(totals['pack'] - total) * 1000:+8.2f} ms vs pack"
        )


def _new_packages(before: set[str]) -> list[tuple[str, int]]:
    """Top-level packages of the modules imported since ``before`` (DAG modules themselves excluded)."""
    counts: dict[str, int] = {}
    for name in set(sys.modules) - before:
        if name.startswith("unusual_prefix_"):
            continue
        top = name.split(".")[0]
        counts[top] = counts.get(top, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def _report(
    pack_files: list[Path],
    trivial_files: list[Path],
    first: dict[Path, float],
    warm: dict[Path, list[float]],
    airflow_import_s: float,
    rounds: int,
    cold: dict[str, list[float]],
) -> int:
    import airflow

    median = {p: statistics.median(v) for p, v in warm.items()}
    width = max(len(p.name) for p in warm) + 2
    print(
        f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}; "
        f"`import airflow, airflow.sdk` took {airflow_import_s:.2f} s; {rounds} warm rounds per file"
    )
    print()
    header = f"{'kind':<8}{'file':<{width}}{'first ms':>10}{'median ms':>11}{'max ms':>10}  target"
    print(header)
    print("-" * len(header))
    failures = []
    for kind, files in (("pack", pack_files), ("trivial", trivial_files)):
        for path in files:
            ok = median[path] * 1000 < FILE_TARGET_MS
            if kind == "pack" and not ok:
                failures.append(
                    f"{path.name}: median {median[path] * 1000:.1f} ms >= {FILE_TARGET_MS:.0f} ms"
                )
            verdict = ("ok" if ok else "SLOW") if kind == "pack" else ""
            print(
                f"{kind:<8}{path.name:<{width}}{_ms(first[path]):>10}{_ms(median[path]):>11}"
                f"{_ms(max(warm[path])):>10}  {verdict}"
            )
    print("-" * len(header))
    pack_total = sum(median[p] for p in pack_files)
    trivial_total = sum(median[p] for p in trivial_files)
    pack_first = sum(first[p] for p in pack_files)
    trivial_first = sum(first[p] for p in trivial_files)
    print(f"{'total':<8}{'pack':<{width}}{_ms(pack_first):>10}{_ms(pack_total):>11}")
    print(f"{'total':<8}{'trivial':<{width}}{_ms(trivial_first):>10}{_ms(trivial_total):>11}")
    ratio = pack_total / trivial_total
    first_ratio = pack_first / trivial_first
    print()
    print(f"warm ratio  pack / trivial = {ratio:.2f}   (target <= {RATIO_TARGET})")
    print(
        f"first ratio pack / trivial = {first_ratio:.2f}   (informational: one sample, includes importing auxeng)"
    )
    pack_cold = statistics.median(cold["pack"])
    trivial_cold = statistics.median(cold["trivial"])
    cold_ratio = pack_cold / trivial_cold
    print(
        f"cold ratio  pack / trivial = {cold_ratio:.2f}   (target <= {COLD_RATIO_TARGET}; fresh processes, "
        f"median of {len(cold['pack'])}: pack {pack_cold * 1000:.1f} ms, trivial {trivial_cold * 1000:.1f} ms)"
    )
    print(
        f"first parse of {pack_files[0].name} minus its warm median "
        f"(~ cost of importing auxeng in a fresh process): {(first[pack_files[0]] - median[pack_files[0]]) * 1000:.1f} ms"
    )
    slow_first = [p.name for p in pack_files if first[p] * 1000 >= FILE_TARGET_MS]
    if slow_first:
        print(f"note: first parse >= {FILE_TARGET_MS:.0f} ms for {', '.join(slow_first)} (one sample)")
    if ratio > RATIO_TARGET:
        failures.append(f"warm ratio {ratio:.2f} > {RATIO_TARGET}")
    if cold_ratio > COLD_RATIO_TARGET:
        failures.append(f"cold ratio {cold_ratio:.2f} > {COLD_RATIO_TARGET}")
    print()
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print(
        textwrap.fill(
            f"PASS: every pack file parses in < {FILE_TARGET_MS:.0f} ms (warm median) and the pack "
            f"costs {ratio:.2f}x the trivial files warm (<= {RATIO_TARGET}) and {cold_ratio:.2f}x cold "
            f"(<= {COLD_RATIO_TARGET}).",
            width=100,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
