# The auxeng-followups image: the official Airflow image + the pack's lock + the pack.
#
#   docker compose build          (docker-compose.yaml builds it for every Airflow service)
#   docker build -t registry.example.com/auxeng-followups:1.2.3 .   (for the Helm chart)
#
# Base: the official image of the Airflow the lock pins (apache-airflow==3.3.2 in
# requirements.txt), for the Python the lock was compiled for (`uv pip compile
# --python-version 3.11`). Bump the two together: `make lock` after editing
# requirements.in, then the FROM lines (tests/deploy/test_compose.py checks they agree).

# Stage 1: the pack's wheel (what `make wheel` builds), from the sources pyproject.toml
# names: plugins/auxeng and include/. The pinned build backend comes from the default index.
FROM apache/airflow:3.3.2-python3.11 AS wheel
COPY --chown=airflow:0 pyproject.toml /tmp/auxeng-src/pyproject.toml
COPY --chown=airflow:0 plugins/auxeng /tmp/auxeng-src/plugins/auxeng
COPY --chown=airflow:0 include /tmp/auxeng-src/include
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/auxeng-src

# Stage 2: the image.
FROM apache/airflow:3.3.2-python3.11

# Installing the lock over the image, the sane way:
# - requirements.txt is complete (every package pinned, with hashes), so
#   `--require-hashes --no-deps` installs exactly the set the tests ran against,
#   and the resolver cannot pull anything unpinned in;
# - it pins the image's own apache-airflow / apache-airflow-core / task-sdk
#   versions, so Airflow itself is left as it is (checked below);
# - the celery provider (CeleryExecutor) is in the lock: the version `make e2e`
#   runs on two workers is the one installed over the image's;
# - the image's packages the lock does not list stay: the redis provider and
#   fab (the UI login) come from the image;
# - `pip check` fails the build if a locked version breaks one of them. If it
#   does, add that provider to requirements.in and `make lock` again, rather
#   than dropping the check.
# The lock's sha256 is kept so that airflow-init can tell a stale image
# (requirements.txt changed, image not rebuilt). The image's documented way is
# to run pip as the `airflow` user (the default).
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r /opt/airflow/requirements.txt \
    && pip check \
    && python -c 'import os, airflow; image = os.environ["AIRFLOW_VERSION"]; \
assert airflow.__version__ == image, f"the lock changed Airflow {image} into {airflow.__version__}"; \
print("Airflow", airflow.__version__)' \
    && sha256sum /opt/airflow/requirements.txt | cut -d " " -f 1 > /opt/airflow/requirements.sha256

# The pack, installed as a package like on any Airflow (docs/operations.md, "Deployment"):
# the wheel, with --no-deps (the lock above has everything it needs; `pip check` proves
# its ranges hold), so `python -m auxeng`, the plugin (its `airflow.plugins` entry point)
# and the templates inside the package need no PYTHONPATH and no include/ folder.
RUN --mount=type=bind,from=wheel,source=/tmp/dist,target=/tmp/dist \
    pip install --no-cache-dir --no-deps /tmp/dist/auxeng_followups-*.whl \
    && pip check

# The DAG files are deployed as files, baked in so the image runs on its own (Helm chart,
# no git-sync). docker-compose.yaml mounts the working copy over them, and over plugins/
# and include/ with PYTHONPATH and AUXENG_INCLUDE_DIR pointing there, for development.
COPY --chown=airflow:0 dags /opt/airflow/dags
