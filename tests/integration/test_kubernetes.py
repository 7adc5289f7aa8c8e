"""deploy/kubernetes/: every kustomization renders, every document validates (built-in kinds
against Kubernetes' schemas, custom resources against their CRDs), checkov finds nothing, and
the manifests agree with the service they run (routes, variables, shutdown, RUNBOOK's labels)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from service.app import create_app
from service.auth_settings import AUTH_VARIABLES
from service.settings import (
    _DELIVERY_VARIABLES,
    _PUSHER_VARIABLES,
    _SERVICE_VARIABLES,
    AuthSettings,
    PusherSettings,
    Secret,
    Settings,
)

from ..kube import (
    KUBERNETES,
    ROOT,
    Document,
    InvalidManifest,
    custom_resource_errors,
    describe,
    find,
    is_custom_resource,
    kustomizations,
    load_all,
    pod_containers,
    render,
    render_text,
    run_checkov,
    validate_builtin,
    validate_custom_resource,
)

BASE = KUBERNETES / "base"
CLOUDNATIVEPG = KUBERNETES / "overlays" / "cloudnativepg"
EXTERNAL_POSTGRES = KUBERNETES / "overlays" / "external-postgres"
OVERLAYS = [CLOUDNATIVEPG, EXTERNAL_POSTGRES]
NAME = "message-send-service"
SECRET = "message-send-service-secrets"
CONFIG = "message-send-service-config"
NAMESPACE = "message-send"
#: the kinds the base must render; an overlay renders them too, plus its own
BASE_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
}
OVERLAY_KINDS = {
    CLOUDNATIVEPG: BASE_KINDS | {"Namespace", "Cluster", "PodMonitor"},
    EXTERNAL_POSTGRES: BASE_KINDS | {"Namespace"},
}
#: secrets the service cannot start without (service/settings.py `required(...)`)
REQUIRED_SECRETS = {
    "DATABASE_URL",
    "PUSHER_APP_ID",
    "PUSHER_KEY",
    "PUSHER_SECRET",
}
#: AUTH_JWT_SECRET: not with an identity provider (AUTH_JWKS_URL)
OPTIONAL_SECRETS = {"ADMIN_TOKEN", "SENTRY_DSN", "AUTH_JWT_SECRET"}


def label(directory: Path) -> str:
    return str(directory.relative_to(KUBERNETES))


every_kustomization = pytest.mark.parametrize("directory", kustomizations(), ids=label)
every_overlay = pytest.mark.parametrize("directory", OVERLAYS, ids=label)


def deployment(directory: Path) -> Document:
    return find(render(directory), "Deployment", NAME)


def pod_spec(directory: Path) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(directory)["spec"]["template"]["spec"]
    return spec


def container(directory: Path, name: str = "service") -> dict[str, Any]:
    matching = [c for c in pod_containers(deployment(directory)) if c["name"] == name]
    assert len(matching) == 1, f"one container {name!r} expected"
    return matching[0]


def secret_refs(directory: Path) -> dict[str, tuple[str, str, bool]]:
    """{variable: (secret, key, optional)} of the service container."""
    return {
        variable["name"]: (ref["name"], ref["key"], ref.get("optional", False))
        for variable in container(directory).get("env", [])
        if (ref := variable.get("valueFrom", {}).get("secretKeyRef"))
    }


# -- rendering and schemas ---------------------------------------------------------------------


def test_the_overlays_are_the_ones_listed_here() -> None:
    assert kustomizations() == [BASE, *sorted(OVERLAYS)]


@every_kustomization
def test_renders_with_kubectl_kustomize(directory: Path) -> None:
    docs = render(directory)
    kinds = {doc["kind"] for doc in docs}
    assert kinds >= BASE_KINDS, f"missing: {BASE_KINDS - kinds}"
    if directory in OVERLAY_KINDS:
        assert OVERLAY_KINDS[directory] <= kinds, f"missing: {OVERLAY_KINDS[directory] - kinds}"
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(names) == len(set(names)), "a kind/name rendered twice"


@every_kustomization
def test_built_in_kinds_validate_strictly(directory: Path) -> None:
    built_in = [doc for doc in render(directory) if not is_custom_resource(doc)]
    assert built_in
    for doc in built_in:
        validate_builtin(doc)


@every_kustomization
def test_custom_resources_validate_against_their_crds(directory: Path) -> None:
    for doc in render(directory):
        if is_custom_resource(doc):
            validate_custom_resource(doc)


def test_the_crd_validator_refuses_unknown_and_misspelt_fields() -> None:
    cluster = find(render(CLOUDNATIVEPG), "Cluster")
    assert custom_resource_errors(cluster) == []

    misspelt = find(render(CLOUDNATIVEPG), "Cluster")
    misspelt["spec"]["postgresql"]["synchronous"]["metod"] = "any"
    assert any(
        "postgresql/synchronous" in error and "metod" in error
        for error in custom_resource_errors(misspelt)
    )

    unknown_top = find(render(CLOUDNATIVEPG), "PodMonitor")
    unknown_top["spec"]["podMetricEndpoints"] = unknown_top["spec"].pop("podMetricsEndpoints")
    assert any("podMetricEndpoints" in error for error in custom_resource_errors(unknown_top))

    wrong_type = find(render(CLOUDNATIVEPG), "Cluster")
    wrong_type["spec"]["instances"] = "three"
    assert any("spec/instances" in error for error in custom_resource_errors(wrong_type))

    bad_metadata = find(render(CLOUDNATIVEPG), "PodMonitor")
    bad_metadata["metadata"]["label"] = {"a": "b"}
    assert any("label" in error for error in custom_resource_errors(bad_metadata))

    wrong_version = find(render(CLOUDNATIVEPG), "Cluster")
    wrong_version["apiVersion"] = "postgresql.cnpg.io/v2"
    with pytest.raises(InvalidManifest, match="serves"):
        validate_custom_resource(wrong_version)

    with pytest.raises(InvalidManifest, match="no CRD"):
        validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Thing"})


def test_the_builtin_validator_refuses_unknown_fields() -> None:
    doc = deployment(BASE)
    doc["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(InvalidManifest, match="livenesProbe"):
        validate_builtin(doc)


# -- checkov -----------------------------------------------------------------------------------


@every_overlay
def test_checkov_finds_no_failed_kubernetes_check(
    directory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What is applied is an overlay; the base alone would fail "default namespace" and
    "image tag latest" by design. Every skip must carry its reason."""
    # re-dumped one document per file: kubectl prints `matchType: =` unquoted (valid YAML 1.2,
    # but YAML 1.1's value tag), which makes checkov drop the whole file without a word
    for index, document in enumerate(load_all(render_text(directory))):
        (tmp_path / f"{index:02d}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    started = time.monotonic()
    report = run_checkov(tmp_path)
    elapsed = time.monotonic() - started
    results, summary = report["results"], report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in results["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    for check in results["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 20, (
            f"{check['check_id']} on {check['resource']} skipped without a reason"
        )
    assert summary["passed"] > 0 and summary["parsing_errors"] == 0
    with capsys.disabled():
        print(
            f"\ncheckov {label(directory)}: {summary['passed']} passed, {summary['failed']} failed,"
            f" {summary['skipped']} skipped, {summary['resource_count']} resources, {elapsed:.1f} s"
        )


# -- agreement with the service ----------------------------------------------------------------


def get_routes() -> set[str]:
    settings = Settings(
        database_url=Secret("postgresql://user:pass@localhost:5432/db"),
        auth=AuthSettings(jwt_secret=Secret("x" * 32)),
        pusher=PusherSettings(app_id="1", key="key", secret=Secret("secret")),
    )
    app = create_app(settings)
    return {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "GET" and isinstance(route.resource, web.PlainResource)
    }


def test_probes_ask_real_routes_on_the_served_port() -> None:
    routes = get_routes()
    service = container(BASE)
    probes = {kind: service[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {kind: probe["httpGet"]["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/readyz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    assert {"/readyz", "/healthz"} <= routes
    ports = {port["name"]: port["containerPort"] for port in service["ports"]}
    assert all(probe["httpGet"]["port"] == "http" for probe in probes.values())
    config = find(render(BASE), "ConfigMap", CONFIG)["data"]
    exposed = re.search(r"^EXPOSE (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert exposed is not None
    assert ports == {"http": int(config["PORT"])} == {"http": int(exposed[1])}
    assert config["HOST"] == "0.0.0.0"
    service_port = find(render(BASE), "Service", NAME)["spec"]["ports"]
    assert [(p["name"], p["targetPort"]) for p in service_port] == [("http", "http")]


def variables_the_service_reads() -> set[str]:
    tables = {*_SERVICE_VARIABLES, *_PUSHER_VARIABLES, *_DELIVERY_VARIABLES}
    settings_source = (ROOT / "service" / "settings.py").read_text()
    for name in REQUIRED_SECRETS:
        assert f'"{name}"' in settings_source, f"settings.py no longer reads {name}"
    auth_source = (ROOT / "service" / "auth_settings.py").read_text()
    for name in AUTH_VARIABLES:
        assert f'"{name}"' in auth_source, f"auth_settings.py no longer reads {name}"
    serving_source = (ROOT / "service" / "serving.py").read_text()
    assert '"SENTRY_ENVIRONMENT"' in serving_source
    return tables | REQUIRED_SECRETS | set(AUTH_VARIABLES) | {"SENTRY_ENVIRONMENT"}


def known_variable(name: str) -> bool:
    # OTEL_*: the OpenTelemetry SDK and exporter read the standard variables themselves
    return name in variables_the_service_reads() or name.startswith("OTEL_")


@every_kustomization
def test_every_variable_set_is_one_the_service_reads(directory: Path) -> None:
    docs = render(directory)
    config = find(docs, "ConfigMap", CONFIG)["data"]
    unknown = sorted(name for name in config if not known_variable(name))
    assert not unknown, f"the ConfigMap sets variables the service does not read: {unknown}"
    for item in pod_containers(find(docs, "Deployment", NAME)):
        names = [variable["name"] for variable in item.get("env", [])]
        assert len(names) == len(set(names)), f"{item['name']}: a variable set twice"
        unknown = sorted(name for name in names if not known_variable(name))
        assert not unknown, f"{item['name']} sets variables the service does not read: {unknown}"
        sources = [source.get("configMapRef", {}).get("name") for source in item["envFrom"]]
        assert sources == [CONFIG], "envFrom: only the ConfigMap (secrets are listed key by key)"
    assert "SHUTDOWN_DEADLINE_SECONDS" in config


@every_kustomization
def test_secrets_come_from_secrets_by_reference(directory: Path) -> None:
    docs = render(directory)
    literal = [describe(doc) for doc in docs if doc["kind"] == "Secret"]
    assert not literal, f"a Secret with values rendered: {literal}"
    for item in pod_containers(find(docs, "Deployment", NAME)):
        values = {v["name"] for v in item.get("env", []) if "value" in v}
        assert not values & (REQUIRED_SECRETS | OPTIONAL_SECRETS), f"literal secrets: {values}"
    config = find(docs, "ConfigMap", CONFIG)["data"]
    assert not set(config) & (REQUIRED_SECRETS | OPTIONAL_SECRETS)
    refs = secret_refs(directory)
    assert set(refs) == REQUIRED_SECRETS | OPTIONAL_SECRETS
    assert {name for name, (_, _, optional) in refs.items() if not optional} == REQUIRED_SECRETS
    # the migrations' container needs the same settings (`migrate` validates them all)
    init = {
        variable["name"]: variable["valueFrom"]
        for variable in container(directory, "migrate")["env"]
    }
    main = {variable["name"]: variable["valueFrom"] for variable in container(directory)["env"]}
    assert init == main


def test_the_secret_example_documents_every_key_and_no_value() -> None:
    example = (BASE / "secret.example.env").read_text()
    keys = dict(re.findall(r"^#?\s*([A-Z_]+)=(.*)$", example, re.M))
    assert set(keys) == REQUIRED_SECRETS | OPTIONAL_SECRETS
    assert all(value.startswith("<set me") for value in keys.values()), keys
    assert {key for key, (secret, _, _) in secret_refs(EXTERNAL_POSTGRES).items()} == set(keys)
    # an example is not applied: no kustomization uses it (comments aside)
    for directory in kustomizations():
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        assert "secret.example.env" not in json.dumps(kustomization)
        assert "secretGenerator" not in kustomization


@every_kustomization
def test_grace_period_outlasts_pre_stop_and_the_drain(directory: Path) -> None:
    """SIGTERM comes after preStop; `serve` then gives requests in flight up to
    SHUTDOWN_DEADLINE_SECONDS (aiohttp's shutdown_timeout) and Pusher calls in flight up to as
    long again (the delivery pipeline's close) before releasing its claims."""
    spec = pod_spec(directory)
    deadline = float(
        find(render(directory), "ConfigMap", CONFIG)["data"]["SHUTDOWN_DEADLINE_SECONDS"]
    )
    command = container(directory)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    margin = 5
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + 2 * deadline + margin


@every_kustomization
def test_labels_and_names_are_the_ones_runbook_uses(directory: Path) -> None:
    runbook = (ROOT / "RUNBOOK.md").read_text()
    selectors = set(re.findall(r"-l (app=[\w.-]+)", runbook))
    deployments = set(re.findall(r"deployment/([\w.-]+)", runbook))
    assert selectors == {f"app={NAME}"} and deployments == {NAME}
    docs = render(directory)
    workload = find(docs, "Deployment", NAME)
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    # `kubectl get deploy,svc,pods -l app=message-send-service` (RUNBOOK)
    for labels in (
        pod_labels,
        workload["metadata"]["labels"],
        find(docs, "Service", NAME)["metadata"]["labels"],
    ):
        assert labels["app"] == NAME
        assert labels["app.kubernetes.io/name"] == NAME
        assert labels["app.kubernetes.io/part-of"] == "message-send"
    # nothing else carries the label, or `kubectl logs -l app=…` would read other pods
    for doc in docs:
        if doc["kind"] in ("Cluster", "PodMonitor"):
            assert (doc["metadata"].get("labels") or {}).get("app") != NAME


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels", selector)
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


@every_kustomization
def test_every_selector_selects_the_pods(directory: Path) -> None:
    docs = render(directory)
    workload = find(docs, "Deployment", NAME)
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert selects(workload["spec"]["selector"], labels)
    assert selects(find(docs, "Service", NAME)["spec"]["selector"], labels)
    assert selects(find(docs, "PodDisruptionBudget", NAME)["spec"]["selector"], labels)
    assert selects(find(docs, "NetworkPolicy", NAME)["spec"]["podSelector"], labels)
    for constraint in workload["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"], labels)
    target = find(docs, "HorizontalPodAutoscaler", NAME)["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", NAME)


@every_kustomization
def test_the_deployment_is_shaped_for_zero_downtime_and_least_privilege(directory: Path) -> None:
    docs = render(directory)
    workload = find(docs, "Deployment", NAME)
    spec = workload["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert pod["automountServiceAccountToken"] is False
    account = find(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    uid = re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid[1])
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for item in pod_containers(workload):
        context = item["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == int(uid[1])
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"requests", "limits"} <= set(item["resources"])
        assert {"name": "tmp", "mountPath": "/tmp"} in item["volumeMounts"]
    assert container(directory, "migrate")["command"] == ["python", "-m", "service", "migrate"]
    assert container(directory)["command"] == ["python", "-m", "service", "serve"]
    autoscaler = find(docs, "HorizontalPodAutoscaler", NAME)["spec"]
    assert autoscaler["minReplicas"] == 3
    assert [m["resource"]["name"] for m in autoscaler["metrics"]] == ["cpu"]
    budget = find(docs, "PodDisruptionBudget", NAME)["spec"]
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 2
    assert find(docs, "Service", NAME)["spec"]["type"] == "ClusterIP"


@every_kustomization
def test_the_network_policy_allows_only_what_the_service_uses(directory: Path) -> None:
    policy = find(render(directory), "NetworkPolicy", NAME)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [[p["port"] for p in rule["ports"]] for rule in policy["ingress"]] == [[8080]]
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443), ("TCP", 4318)}


# -- the overlays ------------------------------------------------------------------------------


@every_overlay
def test_overlays_set_a_namespace_and_pin_the_image(directory: Path) -> None:
    docs = render(directory)
    assert find(docs, "Namespace")["metadata"]["name"] == NAMESPACE
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, describe(doc)
    for item in pod_containers(find(docs, "Deployment", NAME)):
        image = item["image"]
        assert image.startswith(f"{NAME}:") or "@sha256:" in image
        assert not image.endswith(":latest"), f"{item['name']}: {image}"


def test_base_has_no_namespace_and_its_image_is_replaceable() -> None:
    docs = render(BASE)
    assert all("namespace" not in doc["metadata"] for doc in docs)
    assert "images:" in (BASE / "kustomization.yaml").read_text()
    assert {item["image"] for item in pod_containers(deployment(BASE))} == {f"{NAME}:latest"}


def test_external_postgres_takes_database_url_from_the_service_secret() -> None:
    refs = secret_refs(EXTERNAL_POSTGRES)
    assert refs["DATABASE_URL"] == (SECRET, "DATABASE_URL", False)
    assert {secret for secret, _, _ in refs.values()} == {SECRET}
    egress = find(render(EXTERNAL_POSTGRES), "NetworkPolicy", NAME)["spec"]["egress"]
    database = [rule for rule in egress if {p["port"] for p in rule["ports"]} == {5432}]
    assert len(database) == 1 and "to" not in database[0], "an external database: any address"


def test_cloudnativepg_runs_a_synchronous_cluster_the_service_uses() -> None:
    docs = render(CLOUDNATIVEPG)
    cluster = find(docs, "Cluster")
    name = cluster["metadata"]["name"]
    spec = cluster["spec"]
    assert spec["instances"] == 3
    synchronous = spec["postgresql"]["synchronous"]
    assert (synchronous["method"], synchronous["number"]) == ("any", 1)
    assert synchronous.get("dataDurability", "required") == "required"
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] and initdb["owner"]
    assert "enablePodMonitor" not in spec.get("monitoring", {}), "deprecated: use a PodMonitor"
    # the operator's secret for the owner: `<cluster>-app`, key `uri` (host `<cluster>-rw`)
    for item in pod_containers(find(docs, "Deployment", NAME)):
        database_url = next(v for v in item["env"] if v["name"] == "DATABASE_URL")
        assert database_url["valueFrom"]["secretKeyRef"] == {"name": f"{name}-app", "key": "uri"}
    others = {
        secret
        for variable, (secret, _, _) in secret_refs(CLOUDNATIVEPG).items()
        if variable != "DATABASE_URL"
    }
    assert others == {SECRET}
    monitor = find(docs, "PodMonitor")["spec"]
    assert monitor["selector"]["matchLabels"]["cnpg.io/cluster"] == name
    assert [endpoint["port"] for endpoint in monitor["podMetricsEndpoints"]] == ["metrics"]
    # PostgreSQL egress only to this cluster's instances
    egress = find(docs, "NetworkPolicy", NAME)["spec"]["egress"]
    database = [rule for rule in egress if {p["port"] for p in rule["ports"]} == {5432}]
    assert database == [
        {
            "ports": [{"protocol": "TCP", "port": 5432}],
            "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": name}}}],
        }
    ]
    # room for the autoscaler's maximum: a pool of 10 plus the LISTEN session per replica
    most = find(docs, "HorizontalPodAutoscaler", NAME)["spec"]["maxReplicas"]
    assert int(spec["postgresql"]["parameters"]["max_connections"]) >= most * 11 + 10


def test_readme_documents_layout_order_secret_and_migrations() -> None:
    readme = (KUBERNETES / "README.md").read_text()
    assert re.search(
        rf"kubectl (-n \S+ )?create secret generic {SECRET} .*--from-env-file=", readme, re.S
    )
    for directory in kustomizations():
        assert label(directory) in readme
    assert "init container" in readme.lower()
