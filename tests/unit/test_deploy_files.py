"""deploy/: the compose file, the Kubernetes manifests and the systemd units parse, pass
the Kubernetes JSON schemas (kubernetes-validate, offline), and agree with the code:
every WINWIN_* variable they set is a setting, every role runs, probes hit the right paths.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # dev extra: ships the Kubernetes JSON schemas, works offline
import pytest
import yaml

from services.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ROLES = {"api", "worker", "dispatcher", "relay"}
#: Read by services/logs.py before settings exist (not Settings fields).
LOGGING_VARS = {"WINWIN_LOG_FORMAT", "WINWIN_LOG_LEVEL"}
KNOWN = {f"WINWIN_{name.upper()}" for name in Settings.model_fields} | LOGGING_VARS
K8S_VERSION = "1.30.0"


def _winwin_vars(names: Any) -> set[str]:
    return {n for n in names if n.startswith("WINWIN_")}


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in _k8s_docs() if d.get("kind") == kind}


# -- compose -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())


def test_compose_runs_kafka_kraft_postgres_and_every_role(compose):
    services = compose["services"]
    assert set(services) == ROLES | {"kafka", "postgres", "migrate"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "CONTROLLER" in kafka["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert services["postgres"]["image"].startswith("postgres:")
    for role in ROLES:
        service = services[role]
        assert service["command"][0] == role
        assert service["build"]["dockerfile"] == "deploy/compose/Dockerfile"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["stop_grace_period"]  # time to drain on SIGTERM
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert "--host" in services["api"]["command"] and "0.0.0.0" in services["api"]["command"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_environment_names_are_settings(compose):
    for name, service in compose["services"].items():
        if name in ROLES | {"migrate"}:
            env = _winwin_vars(service["environment"])
            assert env <= KNOWN, f"{name}: unknown {sorted(env - KNOWN)}"
            assert {
                "WINWIN_DATABASE_URL",
                "WINWIN_KAFKA_BOOTSTRAP",
                "WINWIN_SECRET_KEY",
                "WINWIN_API_TOKEN",
            } <= env
    example = (DEPLOY / "compose" / ".env.example").read_text()
    assert _winwin_vars(re.findall(r"^(\w+)=", example, re.M)) <= KNOWN


def test_dockerfile_runs_winwin_as_a_user_and_stops_on_sigterm():
    text = (DEPLOY / "compose" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert 'ENTRYPOINT ["winwin"]' in text and "STOPSIGNAL SIGTERM" in text
    assert re.search(r"^USER winwin", text, re.M)
    for folder in ("services", "streams", "schemas", "templates"):
        assert f"COPY {folder} " in text


# -- Kubernetes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,doc", _k8s_docs(), ids=lambda v: v if isinstance(v, str) else "")
def test_k8s_manifest_passes_the_schema(name, doc):
    if doc["kind"] == "Kustomization":
        for resource in doc["resources"]:
            assert (DEPLOY / "k8s" / resource).exists(), resource
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_deployments_cover_every_role_with_config_and_secrets():
    deployments = _by_kind("Deployment")
    assert set(deployments) == {f"winwin-{r}" for r in ROLES}
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"][0] == name.removeprefix("winwin-")
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"winwin-config", "winwin-secrets"}
        assert pod["terminationGracePeriodSeconds"] >= 30


def test_k8s_api_probes_and_worker_sized_to_partitions():
    api = _by_kind("Deployment")["winwin-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    partitions = int(_by_kind("ConfigMap")["winwin-config"]["data"]["WINWIN_KAFKA_PARTITIONS"])
    workers = _by_kind("Deployment")["winwin-worker"]["spec"]["replicas"]
    assert 1 <= workers <= partitions and partitions % workers == 0
    assert _by_kind("Deployment")["winwin-dispatcher"]["spec"]["replicas"] == 1


def test_k8s_config_and_secret_names_are_settings():
    config = _by_kind("ConfigMap")["winwin-config"]["data"]
    secret = _by_kind("Secret")["winwin-secrets"]["stringData"]
    assert set(config) <= KNOWN, sorted(set(config) - KNOWN)
    assert set(secret) <= KNOWN, sorted(set(secret) - KNOWN)
    assert not set(config) & set(secret)
    assert {
        "WINWIN_SECRET_KEY",
        "WINWIN_API_TOKEN",
        "WINWIN_DATABASE_URL",
        "WINWIN_KAFKA_SASL_PASSWORD",
    } <= set(secret)
    assert config["WINWIN_KAFKA_SECURITY_PROTOCOL"] in {
        "PLAINTEXT",
        "SSL",
        "SASL_PLAINTEXT",
        "SASL_SSL",
    }


# -- systemd ---------------------------------------------------------------------------------


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_systemd_units_run_every_role_and_stop_gracefully():
    units = {p.name: _unit(p) for p in (DEPLOY / "systemd").glob("winwin-*.service")}
    roles = {
        "api": "winwin-api.service",
        "dispatcher": "winwin-dispatcher.service",
        "relay": "winwin-relay.service",
        "worker": "winwin-worker@.service",
    }
    for role, name in roles.items():
        service = units[name]["Service"]
        assert service["ExecStart"].split()[1] == role
        assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
        assert service["EnvironmentFile"] == "/etc/winwin/winwin.env"
        assert units[name]["Unit"]["Requires"] == "winwin-migrate.service"
    assert units["winwin-migrate.service"]["Service"]["ExecStart"].endswith("winwin db upgrade")
    target = _unit(DEPLOY / "systemd" / "winwin.target")["Unit"]["Wants"].split()
    assert {f"winwin-{r}.service" for r in ("api", "dispatcher", "relay")} <= set(target)
    env = (DEPLOY / "systemd" / "winwin.env.example").read_text()
    names = set(re.findall(r"^(WINWIN_\w+)=", env, re.M))
    assert names <= KNOWN, sorted(names - KNOWN)
