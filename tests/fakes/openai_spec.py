"""Checking requests and answers against OpenAI's own OpenAPI document (../shared/specs/openai).

The document is read once per test session (about a second with libyaml). Schemas are checked
with jsonschema, resolving ``#/components/schemas/...`` references inside the document. The
spec allows unknown fields (no ``additionalProperties: false``), as the SDK sends some the
snapshot does not list, so only known fields are checked.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "openai" / "openapi.yaml"
_URI = "urn:openai-openapi"


@functools.cache
def _registry() -> Registry[Any]:
    if not SPEC_PATH.exists():
        raise FileNotFoundError(f"the OpenAI spec is missing: {SPEC_PATH} (shared/ sits beside the repo)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as f:
        document = yaml.load(f, Loader=loader)
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{schema_name}"}, registry=_registry())


def problems(schema_name: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the named component schema ("" path means the root)."""
    found = _validator(schema_name).iter_errors(instance)
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in found]


def load() -> None:
    """Read the document now (session fixtures call this so the first test is not slow)."""
    _registry()
