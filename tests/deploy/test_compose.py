"""The docker-compose deployment, checked without a Docker engine.

``docker-compose.yaml`` is interpolated with the variables of ``.env.example``
(Compose's ``${VAR}`` rules, implemented below), validated against the Compose
Specification's JSON schema (vendored in ``tests/data/compose/``), and held to
the deployment's invariants: the services and their health checks, the
CeleryExecutor everywhere, the pack's folders mounted, one set of keys shared by
every component, the image built from the Dockerfile on the locked Airflow, and
no literal secret anywhere.

Each check returns the problems it found, naming the service and variable; the
``test_check_catches`` cases break a copy of the files on purpose and expect the
culprit in the message, so none of the checks can pass vacuously.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.txt"
POSTGRES_INIT = ROOT / "include" / "deploy" / "postgres-init.sql"
SCHEMA_DIR = ROOT / "tests" / "data" / "compose"
SCHEMA_FILE = SCHEMA_DIR / "compose-spec.json"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
REQUIRED_SERVICES = ("postgres", "redis", *AIRFLOW_SERVICES)
ONE_SHOT = frozenset({"airflow-init", "airflow-cli"})
# What each long-running service's health check must probe.
PROBES = {
    "postgres": "pg_isready",
    "redis": "redis-cli ping",
    "airflow-apiserver": "/api/v2/",
    "airflow-scheduler": "8974/health",
    "airflow-dag-processor": "--job-type DagProcessorJob",
    "airflow-triggerer": "--job-type TriggererJob",
    "airflow-worker": "inspect ping",
}
PACK_MOUNTS = {
    "/opt/airflow/dags": "./dags",
    "/opt/airflow/plugins": "./plugins",
    "/opt/airflow/include": "./include",
    "/opt/airflow/requirements.txt": "./requirements.txt",
}
SHARED_KEYS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
# Variables compose must refuse to start without (${VAR:?...}).
REQUIRED_VARIABLES = frozenset(
    {
        "AIRFLOW_DB_PASSWORD",
        "AUXENG_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
        "AUXENG_SECRET_KEY",
        "AUXENG_PUBLIC_URL",
        "AIRFLOW_CONN_AUXENG_DB",
        "AIRFLOW_CONN_SMTP_DEFAULT",
    }
)
SENSITIVE_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|CONN_")
PLACEHOLDER = "change-me"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# --------------------------------------------------------------------------
# Compose's variable interpolation
# --------------------------------------------------------------------------


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` without a value, or a malformed ``$`` expression."""


def interpolate(text: str, env: Mapping[str, str], where: str = "") -> str:
    """Expand ``text`` as Compose does.

    ``$$`` is a literal ``$``; ``$VAR`` and ``${VAR}`` are the value (empty when
    unset); ``${VAR:-default}`` / ``${VAR-default}`` the default when unset or
    empty / unset; ``${VAR:?err}`` / ``${VAR?err}`` an error when unset or empty /
    unset; ``${VAR:+alt}`` / ``${VAR+alt}`` ``alt`` when set and non-empty / set.
    Defaults, messages and alternatives may themselves hold expressions.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 1, where)
            out.append(_expand(text[i + 2 : end], env, where))
            i = end + 1
        elif match := re.match(NAME, text[i + 1 :]):
            out.append(env.get(match.group(), ""))
            i += 1 + match.end()
        else:
            raise InterpolationError(f"{where}: invalid interpolation format {text[i:]!r} (use $$ for a $)")
    return "".join(out)


def _closing_brace(text: str, start: int, where: str) -> int:
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise InterpolationError(f"{where}: unclosed ${{ in {text!r}")


def _expand(body: str, env: Mapping[str, str], where: str) -> str:
    match = re.fullmatch(rf"({NAME})(?:(:?[-?+])(.*))?", body, flags=re.DOTALL)
    if not match:
        raise InterpolationError(f"{where}: invalid interpolation format ${{{body}}}")
    name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
    value = env.get(name)
    is_set, non_empty = value is not None, bool(value)
    if operator is None:
        return value or ""
    present = non_empty if operator.startswith(":") else is_set
    kind = operator[-1]
    if kind == "-":
        return value if present else interpolate(argument, env, where)  # type: ignore[return-value]
    if kind == "+":
        return interpolate(argument, env, where) if present else ""
    if not present:  # "?"
        message = interpolate(argument, env, where) or "is not set"
        raise InterpolationError(f"{where}: required variable {name} is missing a value: {message}")
    return value  # type: ignore[return-value]


def interpolate_tree(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Interpolate every string value (not the keys) of a loaded compose file."""
    if isinstance(node, dict):
        return {
            key: interpolate_tree(value, env, f"{path}.{key}" if path else str(key))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [interpolate_tree(value, env, f"{path}[{n}]") for n, value in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, path)
    return node


def missing_required(node: Any, env: Mapping[str, str]) -> set[str]:
    """The variables whose ``${VAR:?}`` fails under ``env``."""
    missing: set[str] = set()
    for path, text in strings(node):
        while True:
            try:
                interpolate(text, {**env, **dict.fromkeys(missing, "x")}, path)
                break
            except InterpolationError as exc:
                found = re.search(rf"required variable ({NAME})", str(exc))
                if not found:
                    raise
                missing.add(found.group(1))
    return missing


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from strings(value, f"{path}[{n}]")
    elif isinstance(node, str):
        yield path, node


def referenced_variables(text: str) -> set[str]:
    text = text.replace("$$", "")
    return set(re.findall(rf"\$\{{({NAME})", text)) | set(re.findall(rf"\$({NAME})", text))


# --------------------------------------------------------------------------
# .env files (Compose's dotenv rules, the subset .env.example uses)
# --------------------------------------------------------------------------

ASSIGNMENT = re.compile(rf"^(?:export\s+)?({NAME})=(.*)$")


def parse_env_file(text: str) -> tuple[dict[str, str], dict[str, int]]:
    """Return the variables set (values interpolated with the ones above them)
    and every variable documented, set or commented out, with its line number."""
    values: dict[str, str] = {}
    documented: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            commented = ASSIGNMENT.match(stripped.lstrip("#").strip())
            if commented:
                documented.setdefault(commented.group(1), number)
            continue
        match = ASSIGNMENT.match(stripped)
        if not match:
            raise ValueError(f".env.example line {number}: not NAME=value: {line!r}")
        name, raw = match.groups()
        where = f".env.example line {number} ({name})"
        if raw.startswith("'"):
            if not raw.endswith("'") or len(raw) < 2:
                raise ValueError(f"{where}: unclosed single quote")
            value = raw[1:-1]
        elif raw.startswith('"'):
            if not raw.endswith('"') or len(raw) < 2:
                raise ValueError(f"{where}: unclosed double quote")
            value = interpolate(raw[1:-1].replace('\\"', '"'), values, where)
        else:
            value = interpolate(re.sub(r"\s+#.*$", "", raw).strip(), values, where)
        values[name] = value
        documented[name] = number
    return values, documented


# --------------------------------------------------------------------------
# The files, loaded once
# --------------------------------------------------------------------------


@functools.cache
def compose_raw() -> dict[str, Any]:
    """docker-compose.yaml with YAML anchors and merge keys applied, not interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@functools.cache
def env_example() -> tuple[dict[str, str], dict[str, int]]:
    return parse_env_file(ENV_EXAMPLE.read_text())


@functools.cache
def compose_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def environment(service: Mapping[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def volume_mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """target -> source of the service's volumes (short and long syntax)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts[rest.split(":")[0]] = source
        else:
            mounts[volume.get("target")] = volume.get("source")
    return mounts


def airflow_services(compose: Mapping[str, Any]) -> list[str]:
    """The services running the pack's image (those built from the common anchor)."""
    image = compose.get("x-airflow-common", {}).get("image")
    return [name for name, svc in compose.get("services", {}).items() if image and svc.get("image") == image]


def single_reference(value: Any) -> bool:
    """``${VAR}``, ``${VAR:?message}`` or ``${VAR:-}``: a variable, never a literal fallback."""
    return isinstance(value, str) and bool(re.fullmatch(rf"\$\{{{NAME}(?::?\?[^}}]*|:?-)?\}}", value))


# --------------------------------------------------------------------------
# The checks: each returns its problems
# --------------------------------------------------------------------------


def check_schema(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    # A missing required variable is test_env_example_sets_every_required_variable's
    # business: here it gets a stand-in so that the schema errors still show.
    resolved = interpolate_tree(compose, {**env, **dict.fromkeys(missing_required(compose, env), "x")})
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(resolved), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def check_services(compose: Mapping[str, Any]) -> list[str]:
    services = compose.get("services", {})
    problems = [f"{name}: missing service" for name in REQUIRED_SERVICES if name not in services]
    running = set(airflow_services(compose))
    problems += [
        f"{name}: does not run the x-airflow-common image"
        for name in AIRFLOW_SERVICES
        if name in services and name not in running
    ]
    return problems


def check_airflow_config(compose: Mapping[str, Any]) -> list[str]:
    """Executor, broker, result backend, pack mounts and shared keys in every Airflow service."""
    problems: list[str] = []
    services = compose.get("services", {})
    names = airflow_services(compose)
    for name in names:
        env = environment(services[name])
        if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(
                f"{name}: AIRFLOW__CORE__EXECUTOR={env.get('AIRFLOW__CORE__EXECUTOR')!r}, not CeleryExecutor"
            )
        if env.get("AIRFLOW__CELERY__BROKER_URL") != "redis://:@redis:6379/0":
            problems.append(f"{name}: AIRFLOW__CELERY__BROKER_URL={env.get('AIRFLOW__CELERY__BROKER_URL')!r}")
        backend = urlsplit(_mask_references(str(env.get("AIRFLOW__CELERY__RESULT_BACKEND", ""))))
        if backend.scheme != "db+postgresql" or backend.hostname != "postgres":
            problems.append(f"{name}: AIRFLOW__CELERY__RESULT_BACKEND is not the postgres service")
        if env.get("AUXENG_INCLUDE_DIR", "/opt/airflow/include") != "/opt/airflow/include":
            problems.append(f"{name}: AUXENG_INCLUDE_DIR is not the mounted /opt/airflow/include")
        mounts = volume_mounts(services[name])
        for target, source in PACK_MOUNTS.items():
            if mounts.get(target) != source:
                problems.append(f"{name}: {source} is not mounted at {target} (found {mounts.get(target)!r})")
    for key in SHARED_KEYS:
        values = {name: environment(services[name]).get(key) for name in names}
        if len(set(values.values())) != 1:
            problems.append(f"{key} differs between services: {values}")
        for name, value in values.items():
            if not single_reference(value):
                problems.append(f"{name}: {key}={value!r} is not a ${{VAR}} reference")
    return problems


def check_healthchecks(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        command = " ".join(test) if isinstance(test, list) else str(test or "")
        if not test or check.get("disable") or command.startswith("NONE"):
            problems.append(f"{name}: long-running service without a healthcheck")
        elif name in PROBES and PROBES[name] not in command:
            problems.append(f"{name}: healthcheck {command!r} does not probe {PROBES[name]!r}")
        if service.get("restart") not in {"always", "unless-stopped", "on-failure"}:
            problems.append(f"{name}: long-running service without a restart policy")
    return problems


def check_depends_on(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    services = compose.get("services", {})
    for name in airflow_services(compose):
        depends = services[name].get("depends_on") or {}
        if not isinstance(depends, dict):
            problems.append(f"{name}: depends_on without conditions")
            continue
        wanted = {"postgres": "service_healthy", "redis": "service_healthy"}
        if name not in ONE_SHOT:
            wanted["airflow-init"] = "service_completed_successfully"
        if name == "airflow-worker":
            wanted["airflow-apiserver"] = "service_healthy"
        for target, condition in wanted.items():
            found = (depends.get(target) or {}).get("condition")
            if found != condition:
                problems.append(f"{name}: depends_on {target} with condition {found!r}, not {condition}")
        for target, spec in depends.items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            if (spec or {}).get("condition") != expected:
                problems.append(f"{name}: depends_on {target} should wait for {expected}")
    return problems


def check_scalable_worker(compose: Mapping[str, Any]) -> list[str]:
    worker = compose.get("services", {}).get("airflow-worker", {})
    return [
        f"airflow-worker: {key} set, so --scale airflow-worker=N cannot start N workers"
        for key in ("container_name", "ports", "hostname")
        if worker.get(key)
    ]


def check_image(compose: Mapping[str, Any], dockerfile: str, lock: str, dockerignore: str) -> list[str]:
    problems = []
    services = compose.get("services", {})
    for name in AIRFLOW_SERVICES:
        build = services.get(name, {}).get("build")
        build = {"context": build} if isinstance(build, str) else build or {}
        if build.get("context") not in {".", "./"} or build.get("dockerfile", "Dockerfile") != "Dockerfile":
            problems.append(f"{name}: image not built from ./Dockerfile (build: {build!r})")
    locked = re.search(r"^apache-airflow==(\S+)", lock, flags=re.MULTILINE)
    locked_python = re.search(r"--python-version (\S+)", lock)
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    base = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?", froms[-1]) if froms else None
    if not base or base.group(1) != "3.3.2":
        problems.append(f"Dockerfile: FROM {froms} is not apache/airflow:3.3.2")
    elif not locked or base.group(1) != locked.group(1):
        problems.append(
            f"Dockerfile: FROM {froms[-1]} but requirements.txt locks apache-airflow {locked and locked.group(1)}"
        )
    elif base.group(2) and locked_python and base.group(2) != locked_python.group(1):
        problems.append(
            f"Dockerfile: Python {base.group(2)} but requirements.txt is locked for {locked_python.group(1)}"
        )
    installs = [
        line
        for line in re.sub(r"\\\n", " ", dockerfile).splitlines()
        if line.startswith("RUN") and "pip install" in line and "requirements.txt" in line
    ]
    if not installs or "--require-hashes" not in installs[0]:
        problems.append("Dockerfile: does not pip install requirements.txt with --require-hashes")
    if not re.search(r"^COPY\s.*requirements\.txt", dockerfile, flags=re.MULTILINE):
        problems.append("Dockerfile: does not COPY requirements.txt")
    if not re.search(r"^COPY\s.*\bdags\s+/opt/airflow/dags\b", dockerfile, flags=re.MULTILINE):
        problems.append("Dockerfile: does not COPY dags/ to /opt/airflow/dags")
    for source in ("pyproject.toml", "plugins/auxeng", "include"):
        if not re.search(rf"^COPY\s.*\s{re.escape(source)}\s", dockerfile, flags=re.MULTILINE):
            problems.append(f"Dockerfile: does not COPY {source} to build the wheel from")
    commands = re.sub(r"\\\n", " ", dockerfile)
    if not re.search(
        r"^RUN\s.*pip install\s.*--no-deps\s.*auxeng_followups-\S*\.whl", commands, flags=re.MULTILINE
    ):
        problems.append("Dockerfile: does not pip install --no-deps the auxeng_followups wheel")
    if re.search(r"^ENV\s.*\bPYTHONPATH\b", commands, flags=re.MULTILINE):
        problems.append("Dockerfile: sets PYTHONPATH (the installed wheel needs none)")
    if ".env" not in dockerignore.split():
        problems.append(".dockerignore: .env is not excluded from the build context")
    return problems


def _mask_references(text: str) -> str:
    """Each ``${...}`` as ``${REF}``: its message or default may hold URL delimiters."""
    return re.sub(r"\$\{[^{}]*\}", "${REF}", text)


def _literal_password(uri: str) -> str | None:
    """The literal password of a URI's user info, if it has one that is not ``${...}``."""
    uri = _mask_references(uri)
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^@/]*)@", uri, flags=re.IGNORECASE)
    if not match or ":" not in match.group(1):
        return None
    password = match.group(1).split(":", 1)[1]
    return None if password == "" or single_reference(password) else password


def check_no_literal_secrets(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        for key, value in environment(service).items():
            if value is None:
                continue  # passed through from the environment by name
            text = str(value)
            if "://" in text and _literal_password(text) is not None:
                problems.append(f"{name}: {key} holds a URI with a literal password")
            elif SENSITIVE_NAME.search(key) and "://" not in text and not single_reference(text):
                problems.append(f"{name}: {key}={text!r} is a literal, not a ${{VAR}} reference")
            elif SENSITIVE_NAME.search(key) and "://" in text and not re.search(r"\$\{", text):
                problems.append(f"{name}: {key} is a literal URI, not a ${{VAR}} reference")
    return problems


def check_documented(compose: Mapping[str, Any], documented: Mapping[str, int]) -> list[str]:
    used = set().union(*(referenced_variables(text) for _, text in strings(compose)))
    return [
        f"${{{name}}} is used in docker-compose.yaml but not documented in .env.example"
        for name in sorted(used - set(documented))
    ]


def _looks_random(token: str) -> bool:
    if len(token) < 20 or not re.search(r"\d", token) or not re.search(r"[A-Za-z]", token):
        return False
    counts = {c: token.count(c) for c in set(token)}
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy > 3.5


def check_env_example(text: str) -> list[str]:
    """Every variable under a comment; secrets are placeholders; nothing real-looking."""
    problems = []
    _, documented = parse_env_file(text)
    lines = text.splitlines()
    for name, number in documented.items():
        block_start = number - 1
        while block_start > 0 and lines[block_start - 1].strip():
            block_start -= 1
        block = lines[block_start : number - 1]
        prose = [
            line
            for line in block
            if line.startswith("#")
            and not ASSIGNMENT.match(line.lstrip("#").strip())
            and not re.match(r"#\s*-{3,}", line)  # a section rule says nothing about the variable
        ]
        if not prose:
            problems.append(f".env.example line {number}: {name} has no comment saying what it is")
    for number, line in enumerate(lines, start=1):
        match = ASSIGNMENT.match(line.lstrip("#").strip())
        if not match:
            continue
        name, raw = match.groups()
        if raw.strip("'\"") == "":
            continue
        if SENSITIVE_NAME.search(name) and PLACEHOLDER not in raw and _literal_password(raw) is not None:
            problems.append(
                f".env.example line {number}: {name} has a literal password that is not a {PLACEHOLDER} placeholder"
            )
        elif SENSITIVE_NAME.search(name) and PLACEHOLDER not in raw and not re.search(r"\$\{", raw):
            problems.append(f".env.example line {number}: {name} is not a {PLACEHOLDER} placeholder")
        if re.search(r"xox[abposr]-\d|hooks\.slack\.com/services/T", raw):
            problems.append(f".env.example line {number}: {name} holds a real-looking Slack secret")
        for token in re.findall(r"[A-Za-z0-9+/_=-]{20,}", raw):
            if _looks_random(token):
                problems.append(
                    f".env.example line {number}: {name} holds a real-looking secret {token[:6]}…"
                )
    return problems


def check_store_database(compose: Mapping[str, Any], env: Mapping[str, str], init_sql: str) -> list[str]:
    """The postgres service creates the auxeng database the store's connection points at."""
    problems = []
    postgres = compose.get("services", {}).get("postgres", {})
    mounts = volume_mounts(postgres)
    init = [target for target, source in mounts.items() if source == "./include/deploy/postgres-init.sql"]
    if not init or not init[0].startswith("/docker-entrypoint-initdb.d/") or not init[0].endswith(".sql"):
        problems.append(
            "postgres: include/deploy/postgres-init.sql is not mounted into /docker-entrypoint-initdb.d"
        )
    if not single_reference(environment(postgres).get("AUXENG_DB_PASSWORD")):
        problems.append("postgres: AUXENG_DB_PASSWORD (read by the init script) is not passed as a ${VAR}")
    if not re.search(r"^\\getenv\s+(\w+)\s+AUXENG_DB_PASSWORD\s*$", init_sql, flags=re.MULTILINE):
        problems.append("postgres-init.sql: the auxeng password is not read from AUXENG_DB_PASSWORD")
    for statement in (r"CREATE ROLE auxeng LOGIN PASSWORD :'\w+'", r"CREATE DATABASE auxeng OWNER auxeng"):
        if not re.search(statement, init_sql):
            problems.append(f"postgres-init.sql: no {statement!r}")
    metadata_db = environment(postgres).get("POSTGRES_DB")
    conn = urlsplit(env.get("AIRFLOW_CONN_AUXENG_DB", ""))
    if conn.scheme not in {"postgresql", "postgres"} or conn.hostname != "postgres" or conn.path != "/auxeng":
        problems.append(
            f"AIRFLOW_CONN_AUXENG_DB in .env.example does not point at postgres/auxeng: {conn.geturl()!r}"
        )
    elif conn.path.lstrip("/") == metadata_db:
        problems.append("AIRFLOW_CONN_AUXENG_DB points at Airflow's metadata DB")
    elif conn.username != "auxeng" or conn.password != env.get("AUXENG_DB_PASSWORD"):
        problems.append(
            "AIRFLOW_CONN_AUXENG_DB in .env.example is not the auxeng role with AUXENG_DB_PASSWORD"
        )
    return problems


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------


def assert_no_problems(problems: list[str]) -> None:
    assert not problems, "\n".join(["", *problems])


def test_schema_is_the_recorded_one():
    record = (SCHEMA_DIR / "README.md").read_text()
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest in record, (
        f"tests/data/compose/README.md does not record compose-spec.json's sha256 {digest}"
    )
    assert compose_schema()["title"] == "Compose Specification"


def test_compose_file_is_valid_against_the_compose_specification():
    assert_no_problems(check_schema(compose_raw(), env_example()[0]))


def test_env_example_sets_every_required_variable():
    values, _ = env_example()
    missing = missing_required(compose_raw(), values)
    assert not missing, f".env.example does not set these required variables: {sorted(missing)}"
    required = missing_required(compose_raw(), dict.fromkeys(values, ""))
    assert required == REQUIRED_VARIABLES, (
        "the secrets and connections must be ${VAR:?...}, so that compose refuses to start without them; "
        f"not required: {sorted(REQUIRED_VARIABLES - required)}, unexpected: {sorted(required - REQUIRED_VARIABLES)}"
    )


def test_every_variable_used_is_documented():
    assert_no_problems(check_documented(compose_raw(), env_example()[1]))


def test_env_example_is_documented_placeholders():
    assert_no_problems(check_env_example(ENV_EXAMPLE.read_text()))


def test_services():
    assert_no_problems(check_services(compose_raw()))


def test_airflow_services_share_executor_mounts_and_keys():
    assert_no_problems(check_airflow_config(compose_raw()))


def test_long_running_services_have_healthchecks():
    assert_no_problems(check_healthchecks(compose_raw()))


def test_startup_order_waits_for_health_and_init():
    assert_no_problems(check_depends_on(compose_raw()))


def test_worker_can_be_scaled():
    assert_no_problems(check_scalable_worker(compose_raw()))


def test_image_is_built_from_the_dockerfile_on_the_locked_airflow():
    assert_no_problems(
        check_image(compose_raw(), DOCKERFILE.read_text(), LOCK.read_text(), DOCKERIGNORE.read_text())
    )


def test_no_literal_secrets():
    assert_no_problems(check_no_literal_secrets(compose_raw()))


def test_store_database_is_created_and_connected():
    assert_no_problems(check_store_database(compose_raw(), env_example()[0], POSTGRES_INIT.read_text()))


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("a $$b $${C}", {}, "a $b ${C}"),
        ("${A} $A-x", {"A": "1"}, "1 1-x"),
        ("${A:-d}|${A-d}", {"A": ""}, "d|"),
        ("${A:-d}|${A-d}", {}, "d|d"),
        ("${A:+yes}|${A+yes}", {"A": ""}, "|yes"),
        ("${A:-${B:-inner}}", {}, "inner"),
        ("${A:?must be set}", {"A": "v"}, "v"),
        ("${A?}", {"A": ""}, ""),
    ],
)
def test_interpolation_follows_compose(text, env, expected):
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("${A:?set A in .env}", {"A": ""}, "required variable A is missing a value: set A in .env"),
        ("${A?}", {}, "required variable A"),
        ("cost: $5", {}, "invalid interpolation format"),
        ("${A", {}, "unclosed"),
    ],
)
def test_interpolation_errors(text, env, message):
    with pytest.raises(InterpolationError, match=re.escape(message)):
        interpolate(text, env, "x")


def test_env_file_values_use_the_variables_above_them():
    values, documented = parse_env_file(
        '# pw\nP=abc\nU=db://u:${P}@h/d  # note\nJ=\'{"p": "${P}"}\'\n# X=1\n'
    )
    assert values == {"P": "abc", "U": "db://u:abc@h/d", "J": '{"p": "${P}"}'}
    assert set(documented) == {"P", "U", "J", "X"}


# Break a copy of the files and expect the check to name the culprit.


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def _set_env(compose: dict[str, Any], name: str, key: str, value: Any) -> None:
    # The services share the anchor's environment mapping: give this one its own.
    service = _service(compose, name)
    service["environment"] = {**environment(service), key: value}


def _drop_env(compose: dict[str, Any], name: str, key: str) -> None:
    service = _service(compose, name)
    service["environment"] = {k: v for k, v in environment(service).items() if k != key}


def _compose_check(check: Callable[..., list[str]], *args: Any) -> Callable[[dict[str, Any]], list[str]]:
    return lambda compose: check(compose, *args)


BREAKAGES: list[tuple[str, Callable[[dict[str, Any]], None], Callable[[dict[str, Any]], list[str]], str]] = [
    (
        "worker container_name",
        lambda c: _service(c, "airflow-worker").update(container_name="worker"),
        check_scalable_worker,
        "airflow-worker: container_name",
    ),
    (
        "worker host port",
        lambda c: _service(c, "airflow-worker").update(ports=["8793:8793"]),
        check_scalable_worker,
        "airflow-worker: ports",
    ),
    (
        "missing service",
        lambda c: c["services"].pop("airflow-triggerer"),
        check_services,
        "airflow-triggerer: missing service",
    ),
    (
        "local executor",
        lambda c: _set_env(c, "airflow-scheduler", "AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        check_airflow_config,
        "airflow-scheduler: AIRFLOW__CORE__EXECUTOR='LocalExecutor'",
    ),
    (
        "another JWT secret",
        lambda c: _set_env(c, "airflow-worker", "AIRFLOW__API_AUTH__JWT_SECRET", "${WORKER_JWT_SECRET}"),
        check_airflow_config,
        "AIRFLOW__API_AUTH__JWT_SECRET differs between services",
    ),
    (
        "fernet key missing",
        lambda c: _drop_env(c, "airflow-triggerer", "AIRFLOW__CORE__FERNET_KEY"),
        check_airflow_config,
        "airflow-triggerer: AIRFLOW__CORE__FERNET_KEY=None",
    ),
    (
        "include not mounted",
        lambda c: _service(c, "airflow-dag-processor").update(
            volumes=["./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins"]
        ),
        check_airflow_config,
        "airflow-dag-processor: ./include is not mounted at /opt/airflow/include",
    ),
    (
        "no healthcheck",
        lambda c: _service(c, "airflow-triggerer").pop("healthcheck"),
        check_healthchecks,
        "airflow-triggerer: long-running service without a healthcheck",
    ),
    (
        "healthcheck probes nothing useful",
        lambda c: _service(c, "redis").update(healthcheck={"test": ["CMD", "true"]}),
        check_healthchecks,
        "redis: healthcheck",
    ),
    (
        "start before init finished",
        lambda c: _service(c, "airflow-scheduler").update(
            depends_on={
                "postgres": {"condition": "service_healthy"},
                "redis": {"condition": "service_healthy"},
                "airflow-init": {"condition": "service_started"},
            }
        ),
        check_depends_on,
        "airflow-scheduler: depends_on airflow-init with condition 'service_started'",
    ),
    (
        "literal postgres password",
        lambda c: _set_env(c, "postgres", "POSTGRES_PASSWORD", "airflow"),
        check_no_literal_secrets,
        "postgres: POSTGRES_PASSWORD='airflow' is a literal",
    ),
    (
        "literal password in a URI",
        lambda c: _set_env(
            c,
            "airflow-apiserver",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "postgresql+psycopg2://airflow:airflow@postgres/airflow",
        ),
        check_no_literal_secrets,
        "airflow-apiserver: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN holds a URI with a literal password",
    ),
    (
        "literal default for a secret",
        lambda c: _set_env(
            c, "airflow-init", "_AIRFLOW_WWW_USER_PASSWORD", "${AIRFLOW_ADMIN_PASSWORD:-admin}"
        ),
        check_no_literal_secrets,
        "airflow-init: _AIRFLOW_WWW_USER_PASSWORD",
    ),
    (
        "literal connection",
        lambda c: _set_env(
            c,
            "airflow-worker",
            "AIRFLOW_CONN_SLACK_DEFAULT",
            '{"conn_type": "slackwebhook", "password": "T0/B0/X"}',
        ),
        check_no_literal_secrets,
        "airflow-worker: AIRFLOW_CONN_SLACK_DEFAULT",
    ),
    (
        "undocumented variable",
        lambda c: _set_env(c, "airflow-worker", "AUXENG_TIMEZONE", "${AUXENG_TZ:-UTC}"),
        lambda c: check_documented(c, env_example()[1]),
        "${AUXENG_TZ} is used in docker-compose.yaml but not documented",
    ),
    (
        "schema violation",
        lambda c: _service(c, "redis").update(healtcheck={"test": ["CMD", "redis-cli", "ping"]}),
        lambda c: check_schema(c, env_example()[0]),
        "services.redis: Unevaluated properties are not allowed ('healtcheck' was unexpected)",
    ),
    (
        "image not built here",
        lambda c: _service(c, "airflow-worker").pop("build"),
        lambda c: check_image(c, DOCKERFILE.read_text(), LOCK.read_text(), DOCKERIGNORE.read_text()),
        "airflow-worker: image not built from ./Dockerfile",
    ),
    (
        "store on the metadata DB",
        lambda c: _set_env(c, "postgres", "POSTGRES_DB", "auxeng"),
        lambda c: check_store_database(c, env_example()[0], POSTGRES_INIT.read_text()),
        "AIRFLOW_CONN_AUXENG_DB points at Airflow's metadata DB",
    ),
]


@pytest.mark.parametrize(
    ("breaking", "check", "culprit"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_check_catches(breaking, check, culprit):
    compose = copy.deepcopy(compose_raw())
    assert not any(culprit in problem for problem in check(compose)), "the unbroken file already fails"
    breaking(compose)
    problems = check(compose)
    assert any(culprit in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "culprit"),
    [
        (
            "FROM apache/airflow:3.3.2-python3.11",
            "FROM apache/airflow:3.2.0",
            "Dockerfile: FROM ['apache/airflow:3.2.0', 'apache/airflow:3.2.0'] is not apache/airflow:3.3.2",
        ),
        (
            "FROM apache/airflow:3.3.2-python3.11",
            "FROM apache/airflow:3.3.2-python3.12",
            "Dockerfile: Python 3.12",
        ),
        ("--require-hashes ", "", "does not pip install requirements.txt with --require-hashes"),
        ("COPY --chown=airflow:0 dags /opt/airflow/dags", "", "does not COPY dags/"),
        ("plugins/auxeng /tmp", "plugins /tmp", "does not COPY plugins/auxeng"),
        ("--no-deps /tmp/dist", "/tmp/dist", "does not pip install --no-deps the auxeng_followups wheel"),
        (
            "COPY --chown=airflow:0 dags",
            "ENV PYTHONPATH=/opt/airflow/plugins\nCOPY --chown=airflow:0 dags",
            "sets PYTHONPATH",
        ),
    ],
)
def test_image_check_catches(old, new, culprit):
    dockerfile = DOCKERFILE.read_text()
    assert old in dockerfile
    problems = check_image(
        compose_raw(), dockerfile.replace(old, new), LOCK.read_text(), DOCKERIGNORE.read_text()
    )
    assert any(culprit in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "culprit"),
    [
        (
            "AIRFLOW_JWT_SECRET=change-me-random-token",
            "AIRFLOW_JWT_SECRET=hunter2",
            "AIRFLOW_JWT_SECRET is not a change-me placeholder",
        ),
        (
            "AIRFLOW_FERNET_KEY=change-me-fernet-key",
            "AIRFLOW_FERNET_KEY=change-me-Zk3qW9xP2mL7vB4nR8tY1cJ6hD5sA0eF",
            "AIRFLOW_FERNET_KEY holds a real-looking secret",
        ),
        (
            '"xoxb-change-me"',
            '"xoxb-1234-5678-abcd"',
            "AIRFLOW_CONN_SLACK_API_DEFAULT holds a real-looking Slack secret",
        ),
        (
            "${AUXENG_DB_PASSWORD}@postgres",
            "s3cret@postgres",
            "AIRFLOW_CONN_AUXENG_DB has a literal password",
        ),
        (
            "# Key signing survey and opt-out links: at least 16 characters (random token).\n"
            "# Changing it invalidates every link already sent.\n",
            "",
            "AUXENG_SECRET_KEY has no comment",
        ),
    ],
)
def test_env_example_check_catches(old, new, culprit):
    text = ENV_EXAMPLE.read_text()
    assert old in text
    problems = check_env_example(text.replace(old, new))
    assert any(culprit in problem for problem in problems), problems


def test_missing_required_variable_is_named():
    text = re.sub(r"^AUXENG_SECRET_KEY=.*\n", "", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    values, _ = parse_env_file(text)
    assert missing_required(compose_raw(), values) == {"AUXENG_SECRET_KEY"}
    with pytest.raises(InterpolationError, match="required variable AUXENG_SECRET_KEY is missing a value"):
        interpolate_tree(compose_raw(), values)
