"""The Kubernetes manifests in deploy/k8s: valid for Kubernetes 1.30, and what a reviewer checks.

Validation is offline: kubernetes-validate ships the Kubernetes JSON schemas inside the package,
and every validation here runs with sockets disabled, so a schema fetched from the network would
fail the test rather than pass silently. `strict` rejects any field the schema does not know.
"""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from service.auth import load_issuers
from service.settings import ENV, Settings
from tests.support.paths import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "acne-scar-cds"
IMAGE = "acne-scar-cds"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
DEV_ONLY = {"dev-postgres.yaml"}

Doc = dict[str, Any]


def documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomization() -> Doc:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


def deployed() -> list[Doc]:
    """Every object `kubectl apply -k deploy/k8s` creates (dev-only files are not listed)."""
    return [doc for name in kustomization()["resources"] for doc in documents(K8S / name)]


def one(kind: str, name: str | None = None) -> Doc:
    found = [d for d in deployed() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment() -> Doc:
    return one("Deployment", "acne-scar-cds")


def migrate_job() -> Doc:
    return one("Job", "acne-scar-cds-migrate")


def service_containers() -> list[tuple[str, Doc, Doc]]:
    """(owner, pod spec, container) of every container that runs the service's image."""
    result = []
    for doc in deployed():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []):
            if container["image"].split(":")[0].rsplit("/", 1)[-1] == IMAGE:
                result.append((f"{doc['kind']}/{doc['metadata']['name']}", pod, container))
    return result


def web_container() -> Doc:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    return container


def config_data(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in one("ConfigMap", name)["data"].items()}


def secret_data(name: str) -> dict[str, str]:
    secret = one("Secret", name)
    assert "data" not in secret, "write placeholders as stringData, readable and replaceable"
    return {k: str(v) for k, v in secret["stringData"].items()}


def environment(container: Doc) -> dict[str, str]:
    """The variables a container gets from envFrom and env (env wins, as in Kubernetes)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_data(source["configMapRef"]["name"]))
        else:
            env.update(secret_data(source["secretRef"]["name"]))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<valueFrom>")
    return env


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels", selector)
    return all(labels.get(k) == v for k, v in match.items())


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to resolve or connect fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access during validation: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def validate_strict(doc: Doc) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except SchemaNotFoundError as exc:
        pytest.fail(exc.message)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")


# --- schema validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path: Path, no_network: None) -> None:
    docs = documents(path)
    assert docs, f"{path.name} holds no object"
    for doc in docs:
        validate_strict(doc)
        assert doc["metadata"].get("namespace", doc["metadata"]["name"]) == NAMESPACE, doc["metadata"]


def test_validator_is_strict_and_offline(no_network: None) -> None:
    """A misspelt field fails: the strict schemas are really used, and without the network."""
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_dev_only_ones() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in MANIFESTS} - DEV_ONLY
    keys = [(d["kind"], d["metadata"]["name"]) for d in deployed()]
    assert len(keys) == len(set(keys)), "two objects of the same kind and name"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
def test_kustomize_build_validates(no_network: None) -> None:
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in deployed()
    )
    for doc in built:
        validate_strict(doc)


# --- what a reviewer checks ----------------------------------------------------------------------


def test_probes_point_at_readyz_and_healthz() -> None:
    container = web_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    assert environment(container)["PORT"] == "8080"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == 8080


@pytest.mark.parametrize("owner", ["Deployment/acne-scar-cds", "Job/acne-scar-cds-migrate"])
def test_container_is_unprivileged_with_read_only_root(owner: str) -> None:
    found = [(pod, c) for o, pod, c in service_containers() if o == owner]
    assert found, f"{owner} does not run the {IMAGE} image"
    for pod, container in found:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001, "the Dockerfile's cds user"
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context.get("runAsUser", 10001) == 10001
        assert "privileged" not in context
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "/tmp" in mounts and not mounts["/tmp"].get("readOnly"), "gunicorn writes to /tmp"
        for resource in ("cpu", "memory"):
            assert resource in container["resources"]["requests"]
            assert resource in container["resources"]["limits"]


def test_deployment_and_job_run_the_same_image() -> None:
    images = {c["image"] for _, _, c in service_containers()}
    assert images == {f"{IMAGE}:0.1.0"}
    assert kustomization()["images"][0]["name"] == IMAGE


def test_every_env_var_set_is_a_real_setting() -> None:
    known = {name for name, _ in ENV.values()}  # gunicorn's configuration reads Settings too
    containers = service_containers()
    assert containers
    for owner, _, container in containers:
        unknown = set(environment(container)) - known
        assert not unknown, f"{owner} sets variables no code reads: {sorted(unknown)}"


def test_settings_parse_from_the_manifests() -> None:
    env = environment(web_container())
    settings = Settings.from_env(env)
    assert settings.auth_mode == "required"
    assert settings.migrate_on_start is False
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.public_base_urls and all(url.startswith("https://") for url in settings.public_base_urls)
    assert "*" not in settings.cors_origins
    assert int(env["WEB_CONCURRENCY"]) >= 1


def test_database_url_is_a_marked_postgres_placeholder() -> None:
    url = secret_data("acne-scar-cds-secrets")["DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert "REPLACE" in url
    assert "DATABASE_URL" not in config_data("acne-scar-cds-config"), "the password belongs in the Secret"


def test_issuers_file_is_mounted_read_only_and_loads(tmp_path: Path) -> None:
    path = Path(environment(web_container())["AUTH_ISSUERS_FILE"])
    mount = {m["mountPath"]: m for m in web_container()["volumeMounts"]}[str(path.parent)]
    assert mount["readOnly"] is True
    volume = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}[mount["name"]]
    name = volume["configMap"]["name"]
    assert [item["path"] for item in volume["configMap"]["items"]] == [path.name]
    (tmp_path / path.name).write_text(config_data(name)[path.name], encoding="utf-8")
    issuers = load_issuers(str(tmp_path / path.name), None)
    assert issuers and all(iss.startswith("https://") for iss in issuers)
    # Each EHR names the FHIR servers it may send the service to, over https (the token goes there).
    for issuer in issuers.values():
        assert issuer.fhir_servers.keys and all(k.startswith("https://") for k in issuer.fhir_servers.keys)
        assert not issuer.fhir_servers.loopback


def test_web_pods_do_not_migrate_and_the_migration_job_does() -> None:
    assert environment(web_container())["DB_MIGRATE_ON_START"] == "false"
    job = migrate_job()
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["acne-scar-cds", "migrate"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"].get("parallelism", 1) == 1, "two migrations must never run together"
    assert container["envFrom"] == web_container()["envFrom"], "the Job migrates the database the pods use"


def test_shutdown_outlasts_prestop_and_gunicorn_graceful_timeout() -> None:
    graceful = importlib.import_module("service.gunicorn_conf").graceful_timeout
    assert graceful == 10
    pod = deployment()["spec"]["template"]["spec"]
    command = web_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert pre_stop > 0, "a preStop pause lets the Service stop routing before SIGTERM"
    assert pod["terminationGracePeriodSeconds"] > 10
    assert pod["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_pods_spread_across_nodes() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    by_node = [c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert selects(by_node[0]["labelSelector"], labels)


def test_service_hpa_pdb_select_the_deployment() -> None:
    spec = deployment()["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert selects(spec["selector"], labels)
    assert "replicas" not in spec, "the HPA owns the replica count; apply would reset it"
    service = one("Service", "acne-scar-cds")
    assert service["spec"]["type"] == "ClusterIP"
    assert selects(service["spec"]["selector"], labels)
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, "http")]
    hpa = one("HorizontalPodAutoscaler", "acne-scar-cds")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "acne-scar-cds"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    pdb = one("PodDisruptionBudget", "acne-scar-cds")
    assert pdb["spec"]["minAvailable"] == 2 < hpa["spec"]["minReplicas"], "a drain must be able to evict"
    assert selects(pdb["spec"]["selector"], labels)


def test_network_policy_allows_what_the_service_needs() -> None:
    policy = one("NetworkPolicy")["spec"]
    for kind in ("Deployment", "Job"):
        assert selects(policy["podSelector"], one(kind)["spec"]["template"]["metadata"]["labels"]), kind
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress = {(p["protocol"], p["port"]) for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress == {("TCP", 8080)}
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)}


def test_no_database_is_shipped_for_production() -> None:
    assert not [d for d in deployed() if d["kind"] == "StatefulSet" or "postgres" in d["metadata"]["name"]]
    dev = documents(K8S / "dev-postgres.yaml")
    assert all(d["metadata"]["labels"]["acne-scar-cds/dev-only"] == "true" for d in dev)
    assert "DEV ONLY" in (K8S / "dev-postgres.yaml").read_text(encoding="utf-8").splitlines()[0]
