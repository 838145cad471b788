"""Deployment files, checked offline: Kubernetes manifests, the compose stack, the Dockerfile.

Core kinds are validated against Kubernetes' own schemas (kubernetes-validate, bundled, no
cluster); custom resources (Strimzi, Prometheus Operator, KServe, Knative) on the fields their
operators require. Beyond schemas, the files must agree with each other and with infersight: the
configuration loads, topics and bootstrap servers match the Kafka resources, monitors select the
pods and ports that exist and give the job names the dashboards use, and the generated monitoring
manifests hold exactly the dashboards and rules the code builds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infersight.config import Settings, load_settings
from infersight.monitoring import alerts
from infersight.monitoring.output import dashboard_models
from infersight.monitoring.promql import API_JOB, INGEST_JOB, WORKER_JOB

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
K8S_VERSION = "1.32.0"
CORE_KINDS = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PersistentVolumeClaim"}
COMMANDS = {"ingest", "worker", "api", "query", "export", "db", "kafka", "dashboards"}

Manifest = dict[str, Any]


def kustomize(folder: Path) -> list[Manifest]:
    """The objects a kustomization lists (resources, recursively), with its namespace and patches applied."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        if path.is_dir():
            objects.extend(kustomize(path))
        else:
            assert path.is_file(), f"{folder}: missing resource {resource}"
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    if namespace := kustomization.get("namespace"):
        for item in objects:
            if item["kind"] != "Namespace":
                item["metadata"]["namespace"] = namespace
    for patch in kustomization.get("patches", []):
        change = yaml.safe_load((folder / patch["path"]).read_text())
        target = find(objects, change["kind"], change["metadata"]["name"])
        merge(target, change)
    return objects


def merge(target: Any, change: Any) -> None:
    """A strategic merge as kustomize does it for the shapes here: lists of named items merge by name."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        elif (
            isinstance(value, list)
            and all(isinstance(v, dict) and "name" in v for v in value)
            and key in target
        ):
            by_name = {item["name"]: item for item in target[key]}
            for item in value:
                if item["name"] in by_name:
                    merge(by_name[item["name"]], item)
                else:
                    target[key].append(item)
        else:
            target[key] = value


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def config_of(objects: list[Manifest]) -> Settings:
    text = find(objects, "ConfigMap", "infersight-config")["data"]["infersight.yaml"]
    return Settings(**yaml.safe_load(text))


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Manifest = containers[0]
    return result


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return kustomize(KUBE / "base")


@pytest.fixture(scope="module")
def kafkasink() -> list[Manifest]:
    return kustomize(KUBE / "overlays" / "kafkasink")


def test_core_kinds_validate_against_kubernetes_schemas(
    base: list[Manifest], kafkasink: list[Manifest]
) -> None:
    kinds = {o["kind"] for o in base}
    assert kinds >= CORE_KINDS
    for item in [*base, *kafkasink]:
        if item["kind"] in CORE_KINDS:
            kubernetes_validate.validate(item, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        broken = json.loads(json.dumps(find(base, "Deployment", "infersight-worker")))
        broken["spec"]["replicas"] = "three"
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_configuration_loads_and_matches_the_kafka_resources(base: list[Manifest]) -> None:
    settings = config_of(base)
    kafka = of_kind(base, "Kafka")
    assert len(kafka) == 1
    name = kafka[0]["metadata"]["name"]
    assert settings.kafka.bootstrap_servers == f"{name}-kafka-bootstrap:9092"
    assert kafka[0]["spec"]["kafka"]["listeners"][0]["port"] == 9092
    topics = {t["spec"]["topicName"]: t for t in of_kind(base, "KafkaTopic")}
    configured = settings.kafka.topics
    assert set(topics) == {configured.payloads, configured.detections, configured.deadletter}
    pool = of_kind(base, "KafkaNodePool")[0]
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert 1 <= topic["spec"]["replicas"] <= pool["spec"]["replicas"]
    assert settings.kafka.replication_factor <= pool["spec"]["replicas"]
    worker = find(base, "Deployment", "infersight-worker")
    assert 1 <= worker["spec"]["replicas"] <= topics[configured.payloads]["spec"]["partitions"]
    secret = find(base, "Secret", "infersight-secrets")
    for key in secret["stringData"]:
        assert key.startswith("INFERSIGHT_")
    assert Settings(store={"url": secret["stringData"]["INFERSIGHT_STORE__URL"]}).store.url.startswith(
        "postgresql"
    )


def test_strimzi_kafka_runs_in_kraft_mode_with_a_node_pool(base: list[Manifest]) -> None:
    kafka = of_kind(base, "Kafka")[0]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["version"].startswith("4.")
    pool = of_kind(base, "KafkaNodePool")[0]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["storage"]["type"] in {"jbod", "persistent-claim", "ephemeral"}


def test_deployments_run_infersight_as_non_root(base: list[Manifest]) -> None:
    for kind, name, command in (
        ("StatefulSet", "infersight-ingest", "ingest"),
        ("Deployment", "infersight-worker", "worker"),
        ("Deployment", "infersight-api", "api"),
    ):
        deployment = find(base, kind, name)
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        main = container(deployment)
        assert main["image"] == "infersight" and main["args"] == [command]
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        env = {item["name"]: item.get("value") for item in main["env"]}
        mounted = {m["mountPath"] for m in main["volumeMounts"]}
        assert Path(env["INFERSIGHT_CONFIG"]).parent.as_posix() in mounted
    ingest = container(find(base, "StatefulSet", "infersight-ingest"))
    assert ingest["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ingest["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_api_and_ui_have_a_service_and_every_token_comes_from_the_secret(base: list[Manifest]) -> None:
    api = find(base, "Deployment", "infersight-api")
    service = find(base, "Service", "infersight-api")
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    ports = {port["name"]: port["containerPort"] for port in container(api)["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] == "http" and ports["http"] == Settings().api.port
    assert container(api)["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"secretRef": {"name": "infersight-secrets"}} in container(api)["envFrom"]
    secret = find(base, "Secret", "infersight-secrets")["stringData"]
    assert json.loads(secret["INFERSIGHT_API__AUTH_TOKENS"])  # a list of tokens, as the setting takes
    ingest = {item["name"]: item for item in container(find(base, "StatefulSet", "infersight-ingest"))["env"]}
    reference = ingest["INFERSIGHT_INGEST__AUTH_TOKENS"]["valueFrom"]["secretKeyRef"]
    assert reference == {
        "name": "infersight-secrets",
        "key": "INFERSIGHT_INGEST__AUTH_TOKENS",
        "optional": True,  # KServe's logger sends no token: set only when every client does
    }
    # Every part listens on the pod's interfaces (the package's defaults are loopback).
    settings = config_of(base)
    assert settings.ingest.host == settings.api.host == settings.worker.metrics_host == "0.0.0.0"


def test_detector_state_is_shared_by_every_worker(base: list[Manifest]) -> None:
    """Online detectors go on where another worker left off: their state is on shared storage."""
    worker = find(base, "Deployment", "infersight-worker")
    volumes = {volume["name"]: volume for volume in worker["spec"]["template"]["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(worker)["volumeMounts"]}
    state_uri = str(config_of(base).detections.state_uri)
    claim = volumes[mounts[state_uri]]["persistentVolumeClaim"]["claimName"]
    assert find(base, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_ingest_keeps_its_spool_on_a_volume_and_drains_before_it_stops(base: list[Manifest]) -> None:
    """A rolling update loses nothing a logger that never retries sends (see README, the spool)."""
    ingest = find(base, "StatefulSet", "infersight-ingest")
    spec = ingest["spec"]["template"]["spec"]
    main = container(ingest)
    env = {item["name"]: item.get("value") for item in main["env"]}
    claims = {claim["metadata"]["name"] for claim in ingest["spec"]["volumeClaimTemplates"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in main["volumeMounts"]}
    assert mounts[env["INFERSIGHT_INGEST__SPOOL__PATH"]] in claims  # a disk that outlives the pod
    pre_stop = float(main["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(env["INFERSIGHT_INGEST__DRAIN_SECONDS"])
    settings = Settings()
    # The grace period covers the endpoints' update, the drain, the last waits for Kafka and the flush.
    assert (
        spec["terminationGracePeriodSeconds"] > pre_stop + drain + 2 * settings.ingest.kafka_timeout_seconds
    )
    probe = main["readinessProbe"]
    assert probe["periodSeconds"] * probe.get("failureThreshold", 3) < drain  # out of the Service in time


def test_monitors_select_the_pods_and_ports_and_name_the_jobs(base: list[Manifest]) -> None:
    service = find(base, "Service", "infersight-ingest")
    ingest = find(base, "StatefulSet", "infersight-ingest")
    pod_labels = ingest["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container(ingest)["ports"]}

    monitor = find(base, "ServiceMonitor", "infersight-ingest")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == INGEST_JOB
    api_service = find(base, "Service", "infersight-api")
    api_monitor = find(base, "ServiceMonitor", "infersight-api")
    assert api_monitor["spec"]["selector"]["matchLabels"].items() <= api_service["metadata"]["labels"].items()
    assert api_service["metadata"]["labels"][api_monitor["spec"]["jobLabel"]] == API_JOB

    worker = find(base, "Deployment", "infersight-worker")
    pod_monitor = find(base, "PodMonitor", "infersight-worker")
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in {
        p["name"] for p in container(worker)["ports"]
    }
    assert worker_labels[pod_monitor["spec"]["jobLabel"]] == WORKER_JOB
    metrics_port = next(p["containerPort"] for p in container(worker)["ports"] if p["name"] == "metrics")
    assert metrics_port == config_of(base).worker.metrics_port


def test_generated_monitoring_objects_hold_the_rules_and_dashboards(base: list[Manifest]) -> None:
    rule = of_kind(base, "PrometheusRule")
    assert len(rule) == 1 and rule[0]["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule[0]["spec"]["groups"] == alerts.rule_groups()
    maps = [
        m
        for m in of_kind(base, "ConfigMap")
        if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    models = dashboard_models()
    assert {json.loads(next(iter(m["data"].values())))["uid"] for m in maps} == set(models)
    for config_map in maps:
        (key, text), *_ = config_map["data"].items()
        assert json.loads(text) == models[key.removesuffix(".json")]


def test_the_inferenceservice_logs_to_the_ingest_service(base: list[Manifest]) -> None:
    (isvc,) = yaml.safe_load_all((KUBE / "examples" / "inferenceservice.yaml").read_text())
    service = find(base, "Service", "infersight-ingest")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    logger = isvc["spec"]["predictor"]["logger"]
    assert logger["mode"] == "all"
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert logger["url"] == f"http://{host}/" and service["spec"]["ports"][0]["port"] == 80
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"]


def test_the_kafkasink_variant_feeds_the_workers_from_kafka(kafkasink: list[Manifest]) -> None:
    sink, isvc = yaml.safe_load_all((KUBE / "examples" / "inferenceservice-kafkasink.yaml").read_text())
    assert sink["apiVersion"] == "eventing.knative.dev/v1alpha1" and sink["kind"] == "KafkaSink"
    assert sink["spec"]["contentMode"] == "binary"
    kafka = of_kind(kafkasink, "Kafka")[0]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}.svc:9092"
    assert sink["spec"]["bootstrapServers"] == [bootstrap]
    topics = {t["spec"]["topicName"]: t for t in of_kind(kafkasink, "KafkaTopic")}
    assert sink["spec"]["topic"] in topics
    settings = config_of(kafkasink)
    payloads = topics[settings.kafka.topics.payloads]
    assert topics[sink["spec"]["topic"]]["spec"]["partitions"] == payloads["spec"]["partitions"]
    env = {
        e["name"]: e.get("value")
        for e in container(find(kafkasink, "Deployment", "infersight-worker"))["env"]
    }
    extra = Settings(worker={"extra_topics": json.loads(env["INFERSIGHT_WORKER__EXTRA_TOPICS"])}).worker
    assert extra.extra_topics == [sink["spec"]["topic"]]
    url = isvc["spec"]["predictor"]["logger"]["url"]
    assert isvc["spec"]["predictor"]["logger"]["mode"] == "all"
    assert url.endswith(f"/{sink['metadata']['namespace']}/{sink['metadata']['name']}")
    assert url.startswith("http://kafka-sink-ingress.knative-eventing.svc.cluster.local/")


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed"
)
@pytest.mark.parametrize("folder", ["base", "overlays/kafkasink"])
def test_kubectl_kustomize_builds_the_same_objects(folder: str) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / folder)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    theirs = {
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
        for o in yaml.safe_load_all(built.stdout)
    }
    ours = {
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in kustomize(KUBE / folder)
    }
    assert theirs == ours


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_runs_kraft_kafka_postgres_prometheus_grafana_ingest_and_worker() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "postgres", "prometheus", "grafana", "ingest", "worker"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.1.")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("zookeeper" in name for name in services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert (
        DEPLOY / grafana_mounts["/etc/grafana/provisioning"] / "datasources" / "infersight.yaml"
    ).is_file()
    assert list((DEPLOY / grafana_mounts["/var/lib/grafana/dashboards/infersight"]).glob("infersight-*.json"))


def test_compose_infersight_services_match_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    kafka_env = services["kafka"]["environment"]
    postgres_env = services["postgres"]["environment"]
    ports: dict[str, int] = {}
    for name in ("ingest", "worker", "api"):
        service = services[name]
        assert service["command"][0] in COMMANDS and service["build"]["dockerfile"] == "deploy/Dockerfile"
        env = service["environment"]
        for key in list(env):
            monkeypatch.setenv(key, str(env[key]))
        mounted = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        settings = load_settings(DEPLOY / mounted[env["INFERSIGHT_CONFIG"]])
        for key in env:
            monkeypatch.delenv(key)
        assert f"PLAINTEXT://{settings.kafka.bootstrap_servers}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        user, password, db = (
            postgres_env["POSTGRES_USER"],
            postgres_env["POSTGRES_PASSWORD"],
            postgres_env["POSTGRES_DB"],
        )
        assert settings.store.url == f"postgresql://{user}:{password}@postgres:5432/{db}"
        ports[name] = {
            "ingest": settings.ingest.port,
            "worker": settings.worker.metrics_port,
            "api": settings.api.port,
        }[name]
        assert f"{ports[name]}:{ports[name]}" in service["ports"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yaml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets == {
        INGEST_JOB: [f"ingest:{ports['ingest']}"],
        WORKER_JOB: [f"worker:{ports['worker']}"],
        API_JOB: [f"api:{ports['api']}"],
    }


def test_dockerfile_is_multi_stage_non_root_with_one_entrypoint() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert len(stages) >= 2
    last = instructions[instructions.index(stages[-1]) :]
    users = [line.split()[1] for line in last if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("COPY --from=build ") for line in last)
    assert not any("pip install" in line for line in last), "build tools belong in the build stage"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(
        next(line for line in last if line.startswith("ENTRYPOINT ")).removeprefix("ENTRYPOINT ")
    )
    assert entrypoint == ["infersight"] and "infersight" in scripts
    copied = [line.split()[1] for line in instructions if line.startswith("COPY ") and "--from" not in line]
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for source in copied:
        assert (REPO / source).exists() and f"!{source}" in ignore, source
