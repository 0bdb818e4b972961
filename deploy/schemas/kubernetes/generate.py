"""Kubernetes JSON schemas for kubeconform, made from the Kubernetes OpenAPI (swagger 2.0) document.

kubeconform reads one self-contained schema per kind, named ``{kind}-{group}-{version}.json``
(``{kind}-{version}.json`` for the core group); this writes them for the kinds the Helm chart
renders, in the "standalone strict" form of yannh/kubernetes-json-schema: every ``$ref``
inlined, no property the API does not define (``additionalProperties: false``), ``apiVersion``
and ``kind`` fixed, optional fields nullable, int-or-string and quantities as either.

    python deploy/schemas/kubernetes/generate.py SWAGGER.json

SWAGGER.json: ``kubernetes/swagger.json.unprocessed`` of kubernetes-client/python (release-1.36
branch; Apache-2.0, LICENSE beside this file). See deploy/schemas/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KINDS = (  # what deploy/helm/rcm renders from the core API
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.PersistentVolumeClaim",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.policy.v1.PodDisruptionBudget",
)
SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    },
}
DROP = (
    "x-kubernetes-group-version-kind",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-map-type",
    "x-kubernetes-unions",
    "format",
)


def expand(node, defs: dict, seen: tuple[str, ...] = ()):
    """``node`` with its references inlined and the strict rules applied (recursive)."""
    if isinstance(node, list):
        return [expand(n, defs, seen) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in SPECIAL:
            return dict(SPECIAL[name])
        if name in seen:  # JSONSchemaProps refers to itself; nothing the chart renders does
            return {}
        return expand(defs[name], defs, (*seen, name))
    out = {k: expand(v, defs, seen) for k, v in node.items() if k not in DROP}
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
        required = set(out.get("required", ()))
        for key, prop in out["properties"].items():
            if key not in required and isinstance(prop.get("type"), str):
                prop["type"] = [prop["type"], "null"]
    return out


def schema_for(name: str, defs: dict) -> tuple[str, dict]:
    gvk = defs[name]["x-kubernetes-group-version-kind"][0]
    group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
    api_version = f"{group}/{version}" if group else version
    schema = expand(defs[name], defs, (name,))
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind"})
    schema["$schema"] = "http://json-schema.org/schema#"
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json", schema


def main(swagger: str) -> None:
    defs = json.loads(Path(swagger).read_text())["definitions"]
    here = Path(__file__).parent
    for name in KINDS:
        file_name, schema = schema_for(name, defs)
        (here / file_name).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))
        print(file_name)


if __name__ == "__main__":
    main(sys.argv[1])
