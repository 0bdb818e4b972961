"""Static checks of the deployment artefacts (`make deploy-check`); nothing here needs a network.

1. deploy/compose/compose.yaml against the compose-spec JSON schema.
2. `helm lint --strict` of deploy/helm/rcm with the default values and each deploy/helm/rcm/ci/ file.
3. `helm template` of the same, every rendered manifest validated by kubeconform in strict mode
   against the schemas in deploy/schemas/ (Kubernetes kinds and the CRDs: KEDA ScaledObject,
   Strimzi KafkaTopic, CloudNativePG Cluster, Prometheus ServiceMonitor). A kind without a schema
   there fails the check.

    python deploy/check.py --helm PATH --kubeconform PATH [--out DIR]

Exit status 0 when everything passed; each failure is printed with what failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import yaml

DEPLOY = Path(__file__).resolve().parent
CHART = DEPLOY / "helm" / "rcm"
SCHEMAS = DEPLOY / "schemas"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBE_VERSION = "1.36.0"  # the Kubernetes OpenAPI the schemas in deploy/schemas/kubernetes come from
SCHEMA_LOCATIONS = (
    str(SCHEMAS / "kubernetes" / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
    str(SCHEMAS / "crds" / "{{ .Group }}" / "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
)


def value_sets() -> list[tuple[str, list[str]]]:
    """(label, helm arguments) for the default values and each file under the chart's ci/."""
    sets = [("default values", [])]
    for f in sorted((CHART / "ci").glob("*.yaml")):
        sets.append((f.name, ["--values", str(f)]))
    return sets


def compose_errors(path: Path = COMPOSE) -> list[str]:
    """Where ``path`` breaks the compose specification, one line each ([] when valid)."""
    schema = json.loads((SCHEMAS / "compose" / "compose-spec.json").read_text())
    document = yaml.safe_load(path.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def render(helm: str, args: list[str]) -> str:
    """The chart rendered with ``args``; raises CalledProcessError with helm's message."""
    return subprocess.run(
        [helm, "template", "rcm", str(CHART), "--kube-version", KUBE_VERSION, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def kubeconform(binary: str, manifests: str) -> subprocess.CompletedProcess:
    locations = [a for loc in SCHEMA_LOCATIONS for a in ("-schema-location", loc)]
    return subprocess.run(
        [binary, "-strict", "-summary", "-kubernetes-version", KUBE_VERSION, *locations, "-"],
        input=manifests,
        capture_output=True,
        text=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--helm", required=True)
    ap.add_argument("--kubeconform", required=True)
    ap.add_argument("--out", type=Path, help="also write each rendering here")
    args = ap.parse_args(argv)
    failures: list[str] = []
    started = time.monotonic()

    errors = compose_errors()
    failures += [f"compose.yaml: {e}" for e in errors]
    print(f"compose.yaml against the compose-spec schema: {'ok' if not errors else 'FAILED'}")

    for label, extra in value_sets():
        lint = subprocess.run(
            [args.helm, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *extra],
            capture_output=True,
            text=True,
        )
        if lint.returncode != 0:
            failures.append(f"helm lint --strict ({label}):\n{lint.stdout}{lint.stderr}")
        try:
            manifests = render(args.helm, extra)
        except subprocess.CalledProcessError as e:
            failures.append(f"helm template ({label}): {e.stderr.strip()}")
            print(f"{label}: helm template FAILED")
            continue
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{label.removesuffix('.yaml').replace(' ', '-')}.yaml").write_text(
                manifests
            )
        result = kubeconform(args.kubeconform, manifests)
        if result.returncode != 0:
            failures.append(f"kubeconform ({label}):\n{result.stdout}{result.stderr}")
        summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
        lint_state = "ok" if lint.returncode == 0 else "FAILED"
        print(f"{label}: helm lint {lint_state}; kubeconform: {summary[0]}")

    for f in failures:
        print(f"\nFAILED {f}", file=sys.stderr)
    print(f"deploy-check: {'FAILED' if failures else 'ok'} in {time.monotonic() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
