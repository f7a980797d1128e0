#!/usr/bin/env python3
"""Regenerate the Istio JSON schemas in this directory.

The schemas are the JSON Schema form of the pydantic models that
cloudcoil-models-istio generates from one Istio release's CRDs (the
OpenAPI schemas of manifests/charts/base/files/crd-all.gen.yaml), made
strict: every object rejects unknown fields (`additionalProperties: false`),
as `kubectl apply --validate=strict` does against the real CRDs. Only
`pluginConfig` (free-form in the CRD too) stays open.

e2e/test_istio_manifests.py validates our manifests against these files with
the `jsonschema` package; they also work with any JSON Schema tool, e.g.
    check-jsonschema --schemafile istio/schemas/wasmplugin-extensions-v1alpha1.json istio/wasmplugin.yaml

To regenerate (only this script needs cloudcoil; the tests do not):
    python3 -m venv /tmp/istio-schemas
    /tmp/istio-schemas/bin/pip install cloudcoil-models-istio==1.24.2.1 cloudcoil==0.6.0 pydantic==2.14.3
    /tmp/istio-schemas/bin/python istio/schemas/generate.py
(cloudcoil-models-istio 1.24.2.1 is the newest release installable on
Python < 3.14; the output is byte-for-byte stable for these pins.)
To move to another Istio release, change PACKAGE_VERSION (and ISTIO_VERSION
in e2e/test_istio_manifests.py and e2e/kind/run.sh) and add the kinds you use.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import sys
from pathlib import Path

PACKAGE = "cloudcoil-models-istio"
PACKAGE_VERSION = "1.24.2.1"  # Istio 1.24.2
KINDS = [
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
]
HERE = Path(__file__).resolve().parent


def file_name(api_version: str, kind: str) -> str:
    """kubernetes-validate's naming: <kind>-<first label of the group>-<version>.json."""
    group, version = api_version.split("/")
    return f"{kind.lower()}-{group.split('.')[0]}-{version}.json"


def strict_models(module_name: str) -> None:
    """Unknown fields forbidden in every model of the module (and in
    cloudcoil's ObjectMeta & co), then the schemas rebuilt."""
    import pydantic

    classes = []
    for name in ("cloudcoil.apimachinery", "cloudcoil.resources", module_name):
        module = importlib.import_module(name)
        classes += [
            c
            for c in vars(module).values()
            if inspect.isclass(c)
            and issubclass(c, pydantic.BaseModel)
            and not issubclass(c, pydantic.RootModel)  # unions and wrapped scalars, not objects
            and c.__module__ == module.__name__
        ]
    for c in classes:
        c.model_config.update(extra="forbid", populate_by_name=False)
    for c in classes:
        c.model_rebuild(force=True)


def open_objects(node) -> list[str]:
    """Paths of objects that still accept unknown properties, and of
    closed nodes without properties (which would accept nothing)."""
    found = []

    def walk(n, where):
        if isinstance(n, dict):
            if n.get("type") == "object" and "properties" in n and n.get("additionalProperties") is not False:
                found.append(where)
            if n.get("additionalProperties") is False and "properties" not in n:
                found.append(f"{where} (closed, no properties)")
            for k, v in n.items():
                walk(v, f"{where}/{k}")
        elif isinstance(n, list):
            for i, v in enumerate(n):
                walk(v, f"{where}/{i}")

    walk(node, "")
    return found


def without_null(node):
    """Drop the `null` alternative pydantic adds to every optional field
    (`anyOf: [X, {type: null}]` becomes X): a key written with no value is a
    mistake in our manifests, not a way to say "unset"."""
    if isinstance(node, list):
        return [without_null(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: without_null(v) for k, v in node.items()}
    alternatives = node.get("anyOf")
    if isinstance(alternatives, list) and {"type": "null"} in alternatives:
        rest = [a for a in alternatives if a != {"type": "null"}]
        del node["anyOf"]
        if node.get("default", 0) is None:
            del node["default"]
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
    return node


def main() -> int:
    installed = importlib.metadata.version(PACKAGE)
    if installed != PACKAGE_VERSION:
        print(f"need {PACKAGE}=={PACKAGE_VERSION}, found {installed}", file=sys.stderr)
        return 1
    for api_version, kind in KINDS:
        group, version = api_version.split("/")
        module_name = f"cloudcoil.models.istio.{group.split('.')[0]}.{version}"
        strict_models(module_name)
        model = getattr(importlib.import_module(module_name), kind)
        schema = without_null(model.model_json_schema(by_alias=True, mode="validation"))
        # Kubernetes needs these on every object (pydantic has defaults for some).
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
        still_open = open_objects(schema)
        if still_open:
            print(f"{kind}: objects still open: {still_open}", file=sys.stderr)
            return 1
        out = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": (
                f"{api_version} {kind} of Istio {PACKAGE_VERSION.rsplit('.', 1)[0]}, strict "
                f"(unknown fields rejected). Generated by istio/schemas/generate.py from "
                f"{PACKAGE}=={PACKAGE_VERSION} (pydantic models of Istio's CRDs), "
                f"pydantic=={importlib.metadata.version('pydantic')}. Do not edit."
            ),
            **schema,
        }
        path = HERE / file_name(api_version, kind)
        path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
