#!/usr/bin/env python3
"""Checks Bashu's Kubernetes manifests offline: every manifest file and each overlay's rendered
kustomize output against the Kubernetes schemas (kubernetes-validate, strict), and every
ConfigMap, Secret, Service and Deployment a manifest refers to exists in the rendered output.

Usage: check-k8s.py [K8S_DIR]   (default: k8s/ of this repository). Exit 1 on any problem.
Needs `kubectl` (for `kubectl kustomize`) and kubernetes-validate (scripts/install-k8s-tools.sh).
"""

import pathlib
import subprocess
import sys

import kubernetes_validate
import yaml

KUBERNETES = "1.32.0"
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def validate(documents, where):
    for doc in documents:
        if not doc:
            continue
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problem(where, f"{name}: {path}: {error.message}")
        except Exception as error:  # an unknown kind or version
            problem(where, f"{name}: {error}")


def selector_matches(selector, labels):
    wanted = (selector or {}).get("matchLabels", selector or {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def check_references(documents, where, external_secrets):
    names = {}
    for doc in documents:
        names.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    pods = [d for d in documents if d["kind"] == "Deployment"]
    pod_labels = [d["spec"]["template"]["metadata"].get("labels", {}) for d in pods]

    def need(kind, name, who, allowed=()):
        if name not in names.get(kind, set()) and name not in allowed:
            problem(where, f"{who} refers to {kind} {name!r}, which is not in the output")

    for deployment in pods:
        who = f"Deployment/{deployment['metadata']['name']}"
        spec = deployment["spec"]["template"]["spec"]
        if not selector_matches(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"].get("labels", {})):
            problem(where, f"{who}: its selector does not match its pod labels")
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                need("ConfigMap", volume["configMap"]["name"], who)
            if "secret" in volume:
                need("Secret", volume["secret"]["secretName"], who, external_secrets)
        security = spec.get("securityContext", {})
        if not security.get("runAsNonRoot"):
            problem(where, f"{who}: pods must run as non-root")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for container in spec["containers"]:
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    need("ConfigMap", source["configMapKeyRef"]["name"], who)
                if "secretKeyRef" in source:
                    need("Secret", source["secretKeyRef"]["name"], who, external_secrets)
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    need("ConfigMap", source["configMapRef"]["name"], who)
                if "secretRef" in source:
                    need("Secret", source["secretRef"]["name"], who, external_secrets)
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                problem(where, f"{who}: container {container['name']} must have a read-only root filesystem")
            args = container.get("args", [])
            if "--grace-seconds" in args:
                own = int(args[args.index("--grace-seconds") + 1])
                if grace <= own:
                    problem(where, f"{who}: terminationGracePeriodSeconds {grace} must exceed --grace-seconds {own}")
    check_replicas(documents, where)
    for doc in documents:
        who = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "HorizontalPodAutoscaler":
            need(doc["spec"]["scaleTargetRef"]["kind"], doc["spec"]["scaleTargetRef"]["name"], who)
        selector = None
        if doc["kind"] == "Service":
            selector = doc["spec"].get("selector")
        elif doc["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
            selector = doc["spec"].get("selector") or doc["spec"].get("podSelector")
        if selector is not None and not any(selector_matches(selector, labels) for labels in pod_labels):
            problem(where, f"{who}: its selector matches no pod of any Deployment")


def check_replicas(documents, where):
    """No service runs alone: at least two replicas, rolled without a gap, a disruption budget that
    keeps one serving, and an autoscaler that never goes below two."""
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    budgets = {d["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") for d in documents if d["kind"] == "PodDisruptionBudget"}
    scalers = {d["spec"]["scaleTargetRef"]["name"]: d["spec"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        who = f"Deployment/{name}"
        spec = deployment["spec"]
        if spec.get("replicas", 1) < 2:
            problem(where, f"{who}: {spec.get('replicas', 1)} replica(s); every service runs at least two")
        strategy = spec.get("strategy", {})
        if strategy.get("type") != "RollingUpdate" or strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0:
            problem(where, f"{who}: must roll with RollingUpdate and maxUnavailable 0")
        if name not in budgets:
            problem(where, f"{who}: no PodDisruptionBudget")
        scaler = scalers.get(name)
        if scaler is None:
            problem(where, f"{who}: no HorizontalPodAutoscaler")
        elif scaler.get("minReplicas", 1) < 2:
            problem(where, f"{who}: its autoscaler may go below two replicas")
        for budget in (d for d in documents if d["kind"] == "PodDisruptionBudget"):
            if budget["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") == name:
                if budget["spec"].get("minAvailable", 0) >= spec.get("replicas", 1):
                    problem(where, f"PodDisruptionBudget/{name}: minAvailable leaves no pod evictable")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "k8s")
    manifests = [p for p in sorted(root.glob("base/**/*.yaml")) + sorted(root.glob("overlays/**/*.yaml")) if p.name != "kustomization.yaml"]
    for path in manifests:
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except yaml.YAMLError as error:
            problem(path, f"not YAML: {error}")
            continue
        validate(documents, path)
    overlays = sorted(p for p in (root / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    if not overlays:
        problem(root, "no overlays")
    for overlay in overlays:
        rendered = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
        if rendered.returncode != 0:
            problem(overlay, f"kustomize fails: {rendered.stderr.strip()}")
            continue
        documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        external = overlay / "external-secrets.txt"
        external_secrets = set()
        if external.exists():
            external_secrets = {line.strip() for line in external.read_text().splitlines() if line.strip() and not line.startswith("#")}
        validate(documents, f"{overlay} (rendered)")
        check_references(documents, f"{overlay} (rendered)", external_secrets)
        print(f"{overlay.name}: {len(documents)} objects rendered and checked")
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the Kubernetes manifests", file=sys.stderr)
        sys.exit(1)
    print(f"{len(manifests)} manifest files and {len(overlays)} overlays valid against Kubernetes {KUBERNETES}")


if __name__ == "__main__":
    main()
