"""The cluster deployment files agree with the code: service names, commands, health ports, settings names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from infra.broker import KafkaNode
from infra.settings import Settings
from infra.settings_table import setting_rows
from infra.stack import SERVICES, ServiceSpec, env_name

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "infra" / "k8s"
# Local stand-ins replaced by the cluster's own Kafka and ClickHouse.
LOCAL_ONLY = {"broker", "warehouse"}
CLUSTER_SERVICES = [s for s in SERVICES if s.name not in LOCAL_ONLY]
SETTING_NAMES = {r.env for r in setting_rows()}
# The tickpipe services that serve Prometheus /metrics next to /health.
METERED = [s for s in CLUSTER_SERVICES if s.name in {"feed", "streams", "sink", "executor"}]


def default_port(spec: ServiceSpec) -> int:
    return spec.port(Settings())


def health_target(spec: ServiceSpec) -> str:
    return f"127.0.0.1:{default_port(spec)}{spec.health_path}"


# -- compose ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text())["services"]


def test_compose_runs_kafka_in_kraft_mode_clickhouse_and_the_schema_registry(compose: dict[str, Any]) -> None:
    assert compose["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in compose["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert compose["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert compose["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")


def test_the_local_broker_runs_the_kafka_version_and_the_broker_choices_of_compose(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    # Arrange: the version the local broker's jars are resolved at, and the config it starts with
    pom = ElementTree.parse(ROOT / "infra" / "kafka" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    local_version = pom.find("m:properties/m:kafka.version", ns).text
    node = KafkaNode("127.0.0.1", 9092, 9093, tmp_path, tmp_path)
    local = dict(line.split("=", 1) for line in node.properties().splitlines())
    env = compose["kafka"]["environment"]

    # Assert: one Kafka version, and compose's settings (KAFKA_X_Y = x.y) are the local ones
    assert compose["kafka"]["image"] == f"apache/kafka:{local_version}"
    for name in ("process.roles", "controller.listener.names", "inter.broker.listener.name",
                 "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                 "transaction.state.log.min.isr", "group.initial.rebalance.delay.ms", "auto.create.topics.enable"):
        assert str(env["KAFKA_" + name.replace(".", "_").upper()]) == local[name], name


@pytest.mark.parametrize("spec", CLUSTER_SERVICES, ids=lambda s: s.name)
def test_compose_has_each_service_with_its_command_image_and_health_port(
    compose: dict[str, Any], spec: ServiceSpec
) -> None:
    service = compose[spec.name]

    assert service["command"][: len(spec.command)] == list(spec.command)
    assert (ROOT / "infra" / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert health_target(spec) in " ".join(service["healthcheck"]["test"])


def test_compose_creates_topics_before_kafka_clients_start(compose: dict[str, Any]) -> None:
    assert compose["topics"]["command"] == ["topics", "create"]
    for spec in CLUSTER_SERVICES:
        if spec.uses_kafka:
            assert compose[spec.name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_dependencies_name_existing_services_and_wait_on_real_healthchecks(compose: dict[str, Any]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in compose.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in compose, f"{name} depends on unknown service {target}"
            assert rule["condition"] in conditions, (name, target, rule)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in compose[target], f"{name} waits for {target}, which has no healthcheck"


def test_compose_sets_only_known_settings(compose: dict[str, Any]) -> None:
    used = {k for s in compose.values() for k in (s.get("environment") or {}) if k.startswith("TICKPIPE_")}

    assert used, "compose sets no TICKPIPE_* setting"
    assert used <= SETTING_NAMES, sorted(used - SETTING_NAMES)


def test_compose_points_clients_at_the_cluster_endpoints(compose: dict[str, Any]) -> None:
    env = compose["feed"]["environment"]

    assert env["TICKPIPE_KAFKA__BOOTSTRAP"] == "kafka:9092"
    assert env["TICKPIPE_WAREHOUSE__URL"] == "http://clickhouse:8123"
    assert env["TICKPIPE_KAFKA__SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"


def test_compose_services_serve_metrics_and_health_beyond_loopback_for_prometheus(compose: dict[str, Any]) -> None:
    for spec in METERED:
        assert compose[spec.name]["environment"]["TICKPIPE_METRICS_HOST"] == "0.0.0.0", spec.name


# -- kubernetes -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("spec", CLUSTER_SERVICES, ids=lambda s: s.name)
def test_k8s_deployment_per_service_with_probes_on_its_health_port(k8s: list[dict[str, Any]], spec: ServiceSpec) -> None:
    deployment = by_kind(k8s, "Deployment")[spec.name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = default_port(spec)

    assert container["args"][: len(spec.command)] == list(spec.command)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for kind in ("readinessProbe", "livenessProbe"):
        probe = container[kind]
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] == spec.health_path
            assert probe["httpGet"]["port"] in (port, container["ports"][0]["name"])
        else:
            assert f"http://{health_target(spec)}" in " ".join(probe["exec"]["command"])
    assert {"name": "tickpipe-settings"} in [e.get("configMapRef") for e in container["envFrom"]]


@pytest.mark.parametrize("spec", METERED, ids=lambda s: s.name)
def test_k8s_prometheus_scrapes_each_service_on_its_port_which_the_service_binds_beyond_loopback(
    k8s: list[dict[str, Any]], spec: ServiceSpec
) -> None:
    template = by_kind(k8s, "Deployment")[spec.name]["spec"]["template"]
    annotations = template["metadata"]["annotations"]

    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == default_port(spec)
    assert annotations["prometheus.io/path"] == "/metrics"
    # scrapes and httpGet probes arrive on the pod's address, not its loopback
    assert by_kind(k8s, "ConfigMap")["tickpipe-settings"]["data"]["TICKPIPE_METRICS_HOST"] == "0.0.0.0"


def test_k8s_configmap_holds_known_settings_and_the_ports_the_deployments_expose(k8s: list[dict[str, Any]]) -> None:
    data = by_kind(k8s, "ConfigMap")["tickpipe-settings"]["data"]
    deployments = by_kind(k8s, "Deployment")

    assert set(data) <= SETTING_NAMES, sorted(set(data) - SETTING_NAMES)
    for spec in CLUSTER_SERVICES:
        (container,) = deployments[spec.name]["spec"]["template"]["spec"]["containers"]
        key = env_name(spec.port_setting)
        if key in data:
            assert int(data[key]) == container["ports"][0]["containerPort"]
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"


def secret_readers(docs: list[dict[str, Any]], secret: str) -> set[str]:
    return {
        name for name, d in by_kind(docs, "Deployment").items()
        for c in d["spec"]["template"]["spec"]["containers"] for e in c["envFrom"]
        if e.get("secretRef", {}).get("name") == secret
    }


def test_k8s_secrets_hold_venue_keys_for_the_executor_and_clickhouse_credentials_for_the_sink(
    k8s: list[dict[str, Any]],
) -> None:
    secrets = by_kind(k8s, "Secret")

    assert set(secrets["tickpipe-venue-keys"]["stringData"]) == {
        "TICKPIPE_EXECUTOR__API_KEY", "TICKPIPE_EXECUTOR__API_SECRET",
    }
    assert set(secrets["tickpipe-clickhouse"]["stringData"]) == {
        "TICKPIPE_WAREHOUSE__USER", "TICKPIPE_WAREHOUSE__PASSWORD",
    }
    assert secret_readers(k8s, "tickpipe-venue-keys") == {"executor"}
    assert secret_readers(k8s, "tickpipe-clickhouse") == {"sink"}
    data = by_kind(k8s, "ConfigMap")["tickpipe-settings"]["data"]
    assert not {k for s in secrets.values() for k in s["stringData"]} & set(data), "a secret also in the ConfigMap"


def test_k8s_sim_exchange_is_reachable_through_a_service(k8s: list[dict[str, Any]]) -> None:
    service = by_kind(k8s, "Service")["sim-exchange"]
    data = by_kind(k8s, "ConfigMap")["tickpipe-settings"]["data"]

    assert service["spec"]["ports"][0]["port"] == int(data["TICKPIPE_SIM__PORT"])
    assert data["TICKPIPE_FEED__REST_URL"] == f"http://sim-exchange:{data['TICKPIPE_SIM__PORT']}"


def test_k8s_topics_job_creates_the_topics(k8s: list[dict[str, Any]]) -> None:
    job = by_kind(k8s, "Job")["tickpipe-topics"]

    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics", "create"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.timeout(60)
def test_kubectl_kustomize_renders_the_base() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=50, check=False
    )

    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert sorted(d["metadata"]["name"] for d in rendered if d["kind"] == "Deployment") == sorted(
        s.name for s in CLUSTER_SERVICES
    )
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tickpipe" for d in rendered)
