"""Trigger-form params of the pack's DAGs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

# Airflow validates every param of a scheduled DAG on each parse with jsonschema, which first checks
# the schema itself against its dialect's meta-schema: 2020-12's (the default, built of vocabularies
# joined by $dynamicRef) costs ~0.4 ms per param, draft-07's a quarter of that (issue 16). The keywords
# the pack's params use (type, enum, format, minLength, minimum, maximum) mean the same in both.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def param(default: Any, *, description: str, **schema: Any) -> Param:
    """A DAG param: ``default``, its help text in the trigger form, and its JSON schema keywords."""
    return Param(default, description=description, schema={"$schema": SCHEMA_DIALECT, **schema})
