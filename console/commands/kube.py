"""``verdict kube setup|gc``: prepare the sandbox namespace; remove what killed workers left.

``setup`` prints (or, with ``--apply``, creates) the namespace with the restricted Pod
Security Standard enforced, default-deny ingress and egress NetworkPolicies, a
ResourceQuota and LimitRange, and a Role/RoleBinding limited to that namespace and the
verbs workers use.  ``gc`` deletes the pods and ConfigMaps labelled as ours that are older
than ``--older-than``.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from console.errors import UsageError

WORKER_ACCOUNT = "verdict-worker"


def add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    """``--sandbox``, ``--context`` and ``--dry-run`` for commands that run a project."""
    parser.add_argument("--sandbox", choices=["local", "kube"], help="where the project runs")
    parser.add_argument("--context", help="kubeconfig context for --sandbox kube")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --sandbox kube: print the objects a run would create, as YAML, and stop",
    )


def apply_sandbox_options(args: argparse.Namespace, settings: Any, spec: Any) -> bool:
    """Apply the sandbox options to ``settings``; True when ``--dry-run`` printed the run's
    objects instead (no cluster is contacted).

    Raises:
        UsageError: ``--dry-run`` without the kube sandbox, or a project too big for a pod.
    """
    if args.sandbox:
        settings.sandbox.kind = args.sandbox
    if args.context:
        settings.sandbox.kube_context = args.context
    if not args.dry_run:
        return False
    if settings.sandbox.kind != "kube":
        raise UsageError("--dry-run shows a pod's objects: use it with --sandbox kube")
    from pathlib import Path

    from console.checker import new_run_id
    from console.sandbox.kube import KubeSandbox
    from console.sandbox.kube_pod import run_objects, to_yaml

    sandbox = KubeSandbox(new_run_id(), settings=settings.sandbox, spec=spec)
    print(to_yaml(run_objects(sandbox.plan(), settings.sandbox, Path(spec.project))), end="")
    return True


def add_parser(sub: Any) -> None:
    """Register ``verdict kube``."""
    parser = sub.add_parser("kube", help="Kubernetes sandboxes: setup and garbage collection")
    parser.add_argument("--context", help="kubeconfig context (default: current or in-cluster)")
    actions = parser.add_subparsers(dest="kube_action", metavar="ACTION", required=True)
    setup = actions.add_parser("setup", help="print (or apply) the sandbox namespace's objects")
    setup.add_argument("--apply", action="store_true", help="create them in the cluster")
    setup.add_argument(
        "--worker-namespace", default="verdict", help="where workers run (default verdict)"
    )
    setup.set_defaults(func=run_setup)
    gc = actions.add_parser("gc", help="delete leftover pods and ConfigMaps of ours")
    gc.add_argument("--older-than", default="30m", help="age, e.g. 90s, 30m, 2h (default 30m)")
    gc.set_defaults(func=run_gc)


def parse_age(text: str) -> float:
    """``90s`` / ``30m`` / ``2h`` → seconds.

    Raises:
        UsageError: not a number followed by s, m or h.
    """
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise UsageError(f"--older-than: expected a number and s, m or h (like 30m), not {text!r}")
    return float(number) * units[unit]


def setup_objects(namespace: str, worker_namespace: str, max_pods: int) -> list[dict[str, Any]]:
    """The sandbox namespace and what guards it."""
    meta = {"namespace": namespace}
    pss = "pod-security.kubernetes.io"
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    f"{pss}/enforce": "restricted",
                    f"{pss}/enforce-version": "latest",
                    f"{pss}/warn": "restricted",
                },
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-all", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "verdict-sandbox", **meta},
            "spec": {
                "hard": {
                    "pods": str(max_pods),
                    "configmaps": str(max_pods + 5),
                    "limits.cpu": str(max_pods),
                    "limits.memory": f"{max_pods}Gi",
                    "limits.ephemeral-storage": f"{max_pods * 2}Gi",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "verdict-sandbox", **meta},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                        "max": {"cpu": "2", "memory": "4Gi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": WORKER_ACCOUNT, **meta},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "configmaps"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                },
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get", "list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": WORKER_ACCOUNT, **meta},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": WORKER_ACCOUNT,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": WORKER_ACCOUNT, "namespace": worker_namespace}
            ],
        },
    ]


_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "ResourceQuota": "/api/v1/namespaces/{ns}/resourcequotas",
    "LimitRange": "/api/v1/namespaces/{ns}/limitranges",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}


def run_setup(args: argparse.Namespace) -> int:
    """``verdict kube setup [--apply]``."""
    from console.commands.common import settings_from_args
    from console.sandbox.kube_pod import to_yaml

    settings = settings_from_args(args).sandbox
    objects = setup_objects(settings.kube_namespace, args.worker_namespace, settings.kube_max_pods)
    if not args.apply:
        print(to_yaml(objects), end="")
        return 0
    from console.sandbox.kube_api import KubeApiError, connect

    api = connect(args.context or settings.kube_context, settings.kube_request_timeout)
    for obj in objects:
        path = _PATHS[obj["kind"]].format(ns=settings.kube_namespace)
        try:
            api.call("POST", path, body=obj)
            print(f"created {obj['kind']} {obj['metadata']['name']}")
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            print(f"exists  {obj['kind']} {obj['metadata']['name']}")
    return 0


def _created(obj: dict[str, Any]) -> float | None:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def collect_garbage(api: Any, namespace: str, older_than: float) -> list[str]:
    """Delete our pods and ConfigMaps older than ``older_than`` seconds (or of unknown age
    when ``older_than`` is 0); returns ``kind/name`` of each one deleted."""
    from console.sandbox.kube_api import KubeApiError
    from console.sandbox.kube_pod import SELECTOR

    deleted: list[str] = []
    now = time.time()
    for plural in ("pods", "configmaps"):
        base = f"/api/v1/namespaces/{namespace}/{plural}"
        listing = api.call("GET", base, query=[("labelSelector", SELECTOR)])
        for item in listing.get("items") or []:
            created = _created(item)
            if older_than > 0 and (created is None or now - created < older_than):
                continue
            name = item["metadata"]["name"]
            try:
                api.call("DELETE", f"{base}/{name}", query=[("gracePeriodSeconds", "0")])
            except KubeApiError as exc:
                if exc.status != 404:
                    raise
            deleted.append(f"{plural[:-1]}/{name}")
    return deleted


def run_gc(args: argparse.Namespace) -> int:
    """``verdict kube gc [--older-than 30m]``."""
    from console.commands.common import settings_from_args
    from console.sandbox.kube_api import connect

    age = parse_age(args.older_than)
    settings = settings_from_args(args).sandbox
    api = connect(args.context or settings.kube_context, settings.kube_request_timeout)
    for name in collect_garbage(api, settings.kube_namespace, age):
        print(f"deleted {name}")
    return 0
