"""The deployment files, read as data and checked against the code's settings (no Docker, no cluster needed).

docker-compose.yml, the Dockerfile, the Kubernetes base and production overlay, the NATS Helm values: every
setting a process requires is provided, every process has probes on real paths at its real port, secrets are
required and never defaulted, only the gateway is published, the network is fenced, the NATS users are confined to
their own subjects. Where `kubectl` is installed, the overlay is also rendered with its own kustomize.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewaySettings
from gateway.routing import DOCUMENT_BODY_BYTES, UPLOADS

from tests.deploy.facts import (
    BASE,
    METRICS_PORTS,
    COMPOSE_FILE,
    ENTRYPOINT,
    K8S,
    MAKE_SECRETS,
    NATS_CONF,
    NATS_PROCESSES,
    NATS_SEED_FILE,
    NATS_VALUES,
    NOT_MOUNTED,
    POSTGRES_INIT,
    PROCESSES,
    PRODUCTION,
    ROOT,
    SERVICE_ONLY_KEYS,
    SERVICES,
    Process,
    compose_environment,
    compose_references,
    env_names,
    expected_permissions,
    interpolate,
    kustomization_literals,
    load_compose,
    load_documents,
    required_env_from_class,
)

SECRET_VARS = {
    "POSTGRES_PASSWORD", "INTAKE_DB_PASSWORD", "REFERRALS_DB_PASSWORD", "FUNDS_DB_PASSWORD", "REPORTS_DB_PASSWORD",
    "GATEWAY_DB_PASSWORD",
    "NATS_INTAKE_PASSWORD", "NATS_REFERRALS_PASSWORD", "NATS_FUNDS_PASSWORD", "NATS_REPORTS_PASSWORD",
    "NATS_GATEWAY_PASSWORD",
    "NATS_OPS_PASSWORD",
    "REHAB_ADMIN_PASSWORD", "REHAB_KEYS_DIR",
}
DUMMY_SECRETS = {name: f"dummy{name.lower().replace('_', '')}" for name in SECRET_VARS} | {"REHAB_KEYS_DIR": "/keys"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def compose_effective(compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as docker-compose would run it, with every required secret given a dummy value."""
    return interpolate(compose, DUMMY_SECRETS)


def settings_from_env(process: Process, env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """An instance of the process's settings class built only from `env` (no .env file, no stray REHAB_ vars)."""
    cls = process.settings_class()
    if cls is None:
        pytest.skip(f"{process.settings_path} is not written yet")
    for name in list(os.environ):
        if name.startswith("REHAB_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)


def check_settings_against_class(process: Process, env: dict[str, str], secrets_mounted: set[Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared by compose and Kubernetes: what the class requires is given, nothing given is unknown to it, the
    values parse, and the key files it will open are the ones mounted (`secrets_mounted`, paths in the container),
    all in its own folder $REHAB_SECRETS_DIR/<process> (SPEC §8: one keyring per service)."""
    cls = process.settings_class()
    if cls is None:
        pytest.skip(f"{process.settings_path} is not written yet")
    known = env_names(cls)
    given = {name for name in env if name.startswith("REHAB_")}
    assert required_env_from_class(cls) <= given, f"{process.name}: required settings missing"
    assert given <= set(known), f"{process.name}: settings its class does not read (a typo?): {given - set(known)}"
    settings = settings_from_env(process, env, monkeypatch)
    assert settings.port == process.port
    assert settings.host == "0.0.0.0"
    # /metrics on a listener of its own, reachable from the container network; never the main port.
    assert settings.metrics_port == process.metrics_port != settings.port
    assert settings.metrics_host == "0.0.0.0"
    assert settings.environment == "production"
    assert settings.db_url.startswith("postgresql+psycopg://")
    assert settings.nats_url.startswith(("nats://", "tls://"))
    if process.holds_data_keys:
        key_paths = [settings.kek_path, settings.blind_index_key_path, settings.audit_key_path,
                     settings.public_key_path, settings.audit_signing_key_path]
    elif process.is_service:
        key_paths = [settings.audit_key_path, settings.public_key_path, settings.audit_signing_key_path]
    else:
        key_paths = [settings.private_key_path, settings.public_key_path, settings.audit_key_path,
                     settings.audit_signing_key_path]
        for backend in ("intake", "referrals", "funds", "reports"):
            assert settings.backends[backend].endswith(f":{PROCESSES[backend].port}")
    own = settings.secrets_path / process.name
    assert settings.own_secrets_path == own
    for path in key_paths:
        assert path.parent == own, f"{process.name}: {path} is outside its own secrets folder {own}"
        assert path in secrets_mounted, f"{process.name}: {path} is not mounted"
    assert {path.parent for path in secrets_mounted} == {own}, f"{process.name}: a key mounted outside {own}"


def assert_trusts_no_proxy_by_default(env: dict[str, str]) -> None:
    """SPEC §3: X-Forwarded-For is believed only from the proxies the operator names in REHAB_TRUSTED_PROXIES,
    never by default, and never from whole private ranges (any pod or container in them could choose the address
    the sign-in limits count). The setting is there, empty, for the operator to fill in; uvicorn's own variable is
    not used (kit.service.serve never lets uvicorn read it)."""
    assert "FORWARDED_ALLOW_IPS" not in env
    assert env["REHAB_TRUSTED_PROXIES"] == ""


# ==== docker-compose ================================================================================================


def test_compose_runs_nats_postgres_the_three_services_and_the_gateway(compose):
    assert set(compose["services"]) == {"nats", "postgres", *PROCESSES}


def test_compose_publishes_only_the_gateway_and_only_on_loopback_by_default(compose, compose_effective):
    published = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"gateway"}
    for name, svc in compose["services"].items():
        assert "network_mode" not in svc, f"{name} must not share the host network"
    (port,) = compose_effective["services"]["gateway"]["ports"]
    assert port == "127.0.0.1:8000:8000"
    assert compose["networks"]["backend"].get("internal") is True
    for name in ("nats", "postgres", "intake", "referrals", "funds"):
        assert compose["services"][name]["networks"] == ["backend"]


def test_compose_serves_metrics_on_a_port_of_its_own_and_never_publishes_it(compose, compose_effective):
    for process in PROCESSES.values():
        svc = compose_effective["services"][process.name]
        env = compose_environment(svc)
        assert env["REHAB_METRICS_PORT"] == str(process.metrics_port) != env[f"REHAB_{process.upper}_PORT"]
        assert env["REHAB_METRICS_HOST"] == "0.0.0.0"  # for a scraper on the internal network
        published = " ".join(str(port) for port in svc.get("ports", []))
        assert str(process.metrics_port) not in published, f"{process.name} publishes its metrics"
        assert not svc.get("expose"), "nothing beyond the compose networks either"


def test_compose_waits_for_healthy_dependencies_and_every_service_has_a_health_check(compose):
    for name, svc in compose["services"].items():
        assert "healthcheck" in svc, f"{name} has no health check"
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for dependency, how in depends.items():
            assert how == {"condition": "service_healthy"}, f"{name} → {dependency}"
            assert "healthcheck" in compose["services"][dependency]
    for process in SERVICES:
        assert set(compose["services"][process.name]["depends_on"]) == {"nats", "postgres"}
    assert set(compose["services"]["gateway"]["depends_on"]) == {"postgres", "intake", "referrals", "funds", "reports"}


def test_compose_health_checks_ask_each_process_for_readyz_on_its_own_port(compose):
    for process in PROCESSES.values():
        test = " ".join(compose["services"][process.name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{process.port}/readyz" in test
    assert "js-enabled-only" in " ".join(compose["services"]["nats"]["healthcheck"]["test"])
    # While the image's init scripts run, PostgreSQL listens on its socket only: a TCP check is not fooled.
    assert "127.0.0.1" in compose["services"]["postgres"]["healthcheck"]["test"]


def test_compose_secrets_are_required_and_never_defaulted():
    references = compose_references(COMPOSE_FILE.read_text())
    used = {ref.name for ref in references}
    assert SECRET_VARS <= used
    for ref in references:
        secretish = ref.name in SECRET_VARS or re.search(r"PASSWORD|SECRET|TOKEN|KEY", ref.name)
        if secretish:
            assert ref.op == ":?", f"${{{ref.name}}} must be written ${{{ref.name}:?…}}"
            assert ref.arg.strip(), f"${{{ref.name}:?}} should say what to set"


def test_compose_refuses_to_start_without_a_secret(compose):
    for missing in sorted(SECRET_VARS):
        env = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            interpolate(compose, env)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_compose_gives_each_process_every_setting_it_needs(name, compose, compose_effective, monkeypatch):
    process = PROCESSES[name]
    raw = compose_environment(compose["services"][name])
    env = compose_environment(compose_effective["services"][name])
    assert process.required_env <= set(env), f"missing: {process.required_env - set(env)}"
    assert env["REHAB_HOST"] == "0.0.0.0"
    assert env[f"REHAB_{process.upper}_PORT"] == str(process.port)
    assert env["REHAB_ENVIRONMENT"] == "production"
    assert env["REHAB_SECRETS_DIR"] == "/run/secrets"
    # Its own database and role, with the password PostgreSQL's init script gives that role.
    db_url = raw[f"REHAB_{process.upper}_DATABASE_URL"]
    assert db_url == (f"postgresql+psycopg://{name}:${{{process.upper}_DB_PASSWORD:?set {process.upper}_DB_PASSWORD "
                      f"(deploy/make-secrets.sh)}}@postgres:5432/{name}")
    postgres_env = compose_environment(compose["services"]["postgres"])
    assert f"{process.upper}_DB_PASSWORD" in postgres_env
    # Every process logs in to NATS as its own user (the gateway publishes who the staff are).
    assert raw["REHAB_NATS_URL"].startswith(f"nats://{name}:${{NATS_{process.upper}_PASSWORD:?")
    assert raw["REHAB_NATS_URL"].endswith("@nats:4222")
    assert f"NATS_{process.upper}_PASSWORD" in compose_environment(compose["services"]["nats"])
    assert env["REHAB_STREAM_REPLICAS"] == "1"  # one NATS server in compose
    if not process.is_service:
        for backend in SERVICES:
            assert env[f"REHAB_{backend.upper}_URL"] == f"http://{backend.name}:{backend.port}"
        assert_trusts_no_proxy_by_default(env)
    mounted = {Path(s["target"]) for s in compose["services"][name]["secrets"]}
    assert all(path.is_absolute() for path in mounted), "targets name the place the process looks in"
    assert {path.parent for path in mounted} == {Path(env["REHAB_SECRETS_DIR"]) / name}
    assert {path.name for path in mounted} == set(process.keys)
    check_settings_against_class(process, env, mounted, monkeypatch)


def test_compose_key_files_come_from_each_process_s_own_folder(compose, compose_effective):
    """SPEC §8: each process gets the files of its own folder <keys>/<process>/ and no other's, at the same place
    under its REHAB_SECRETS_DIR, with the same name."""
    sources = {}
    for name, spec in compose["secrets"].items():
        assert spec["file"].startswith("${REHAB_KEYS_DIR:?"), name
        folder, file = spec["file"].split("}", 1)[1].lstrip("/").split("/")
        sources[name] = (folder, file)
    used = []
    for name in PROCESSES:
        secrets_dir = Path(compose_environment(compose_effective["services"][name])["REHAB_SECRETS_DIR"])
        for mount in compose["services"][name]["secrets"]:
            folder, file = sources[mount["source"]]
            assert folder == name, f"{name} mounts {mount['source']}, from {folder}'s folder"
            assert Path(mount["target"]) == secrets_dir / name / file, "the file keeps its name and its folder"
            used.append(mount["source"])
    assert sorted(used) == sorted(sources), "every key secret is mounted, once, by its own process"
    for name in ("nats", "postgres"):
        assert not compose["services"][name].get("secrets"), f"{name} gets no key"
    # The private signing key goes to the gateway only; the field-encryption keys never do.
    holders = {name for name, svc in compose["services"].items()
               if any(Path(m["target"]).name == "token_signing.pem" for m in svc.get("secrets", []))}
    assert holders == {"gateway"}
    gateway_files = {Path(m["target"]).name for m in compose["services"]["gateway"]["secrets"]}
    assert not gateway_files & SERVICE_ONLY_KEYS


def test_compose_app_containers_are_locked_down(compose):
    for name in PROCESSES:
        svc = compose["services"][name]
        assert svc["command"] == [name]
        assert svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert "user" not in svc or svc["user"] not in ("0", "root", "0:0")


def test_compose_nats_keeps_jetstream_on_a_volume_and_postgres_creates_the_databases(compose):
    nats = compose["services"]["nats"]
    assert "nats-data:/data" in nats["volumes"]
    assert "./deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro" in nats["volumes"]
    assert "store_dir: /data" in NATS_CONF.read_text()
    assert "nats-data" in compose["volumes"] and "postgres-data" in compose["volumes"]
    postgres = compose["services"]["postgres"]
    assert "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    script = POSTGRES_INIT.read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", script))
    assert needed == {f"{p.upper}_DB_PASSWORD" for p in PROCESSES.values()}
    assert needed <= set(compose_environment(postgres))
    for process in PROCESSES.values():
        assert f"create_database {process.name} " in script
    assert os.access(POSTGRES_INIT, os.X_OK)


def test_compose_images_are_pinned(compose):
    for name in ("nats", "postgres"):
        image = compose["services"][name]["image"]
        assert re.search(r":\d+\.\d+\.\d+", image) or re.search(r":\d+\.\d+-", image), image
        assert not image.endswith(":latest")


# ==== the image =====================================================================================================


def dockerfile_stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(stripped)
    return stages


def test_the_image_is_multi_stage_non_root_pinned_and_has_no_build_tools_in_the_final_stage():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = stages[-1]
    assert final[0] == "FROM ${PYTHON_IMAGE} AS runtime"
    body = "\n".join(final)
    assert "apt-get install" not in body and "build-essential" not in body and "gcc" not in body
    assert "COPY --from=builder /opt/venv /opt/venv" in body
    (user,) = [line for line in final if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert 'ENTRYPOINT ["/usr/local/bin/rehab-entrypoint"]' in body
    assert "REHAB_HOST=0.0.0.0" in body
    builder = "\n".join(stages[0])
    assert "pip install -c requirements.lock ." in builder, "runtime dependencies at their locked versions"
    for copied in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+(?: \S+)*) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"COPY {path}: no such file"


def test_the_build_context_is_an_allow_list_that_can_not_carry_secrets():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "requirements.lock", "kit", "ops", "gateway", "services",
                       "deploy/docker/entrypoint.sh"}
    for pattern in ("**/.env", "**/secrets", "**/*.pem", "**/*.key", "**/kek.json", "**/*.db"):
        assert pattern in lines
    for package in ("kit", "ops", "gateway", "services"):
        assert (ROOT / package).is_dir()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "-m gateway"),
        (["gateway"], "-m gateway"),
        (["intake"], "-m services.intake"),
        (["referrals"], "-m services.referrals"),
        (["funds", "--x"], "-m services.funds --x"),
    ],
)
def test_the_entrypoint_maps_the_command_to_the_process(args, expected, tmp_path):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    result = subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, check=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert result.stdout.strip() == expected


def test_the_entrypoint_runs_any_other_command_as_given(tmp_path):
    result = subprocess.run(["sh", str(ENTRYPOINT), "echo", "rehab", "audit"], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "rehab audit"
    assert os.access(ENTRYPOINT, os.X_OK)


def test_every_process_module_the_image_can_start_exists():
    import importlib.util

    for process in PROCESSES.values():
        if importlib.util.find_spec(process.module) is None:
            pytest.skip(f"{process.module} is not written yet")
        assert importlib.util.find_spec(f"{process.module}.__main__") is not None, process.module


# ==== Kubernetes: kustomizations ====================================================================================


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def test_every_kustomization_lists_files_that_exist():
    found = kustomizations()
    assert {p.parent for p in found} == {BASE, PRODUCTION, K8S / "overlays" / "openbao"}
    for path in found:
        k = yaml.safe_load(path.read_text())
        assert k["kind"] == "Kustomization"
        for resource in k.get("resources", []):
            target = (path.parent / resource).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: {resource}"
        for patch in k.get("patches", []):
            if "path" in patch:
                assert (path.parent / patch["path"]).is_file(), f"{path}: {patch['path']}"


def test_every_manifest_file_is_used_by_a_kustomization():
    listed: set[Path] = set()
    for path in kustomizations():
        k = yaml.safe_load(path.read_text())
        listed |= {(path.parent / r).resolve() for r in k.get("resources", [])}
        listed |= {(path.parent / p["path"]).resolve() for p in k.get("patches", []) if "path" in p}
    manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and p != NATS_VALUES}
    assert manifests - listed == set(), "a manifest no kustomization includes"


def test_key_material_is_read_only_from_the_git_ignored_secrets_folder():
    k = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())
    for generator in k["secretGenerator"]:
        sources = [f.split("=", 1)[-1] for f in generator.get("files", [])] + generator.get("envs", [])
        assert sources, generator["name"]
        assert "literals" not in generator, "no secret value in a committed file"
        for source in sources:
            assert source.startswith("secrets/"), source
    ignore = (PRODUCTION / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore and "!.gitignore" in ignore
    tracked = subprocess.run(["git", "ls-files", "deploy/k8s/overlays/production/secrets"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert set(tracked) <= {"deploy/k8s/overlays/production/secrets/.gitignore"}


# ==== Kubernetes: workloads (the files as written) ==================================================================


@functools.cache
def base_documents() -> list[dict[str, Any]]:
    docs = []
    for resource in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]:
        docs += load_documents(BASE / resource)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return match


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_there_is_one_deployment_service_and_disruption_budget_per_process():
    docs = base_documents()
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(PROCESSES)
    services = by_kind(docs, "Service")
    budgets = by_kind(docs, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector_matches(deployment["spec"]["selector"]["matchLabels"], labels)
        pdb = [b for b in budgets.values() if selector_matches(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(pdb) == 1, f"{name}: one PodDisruptionBudget"
        assert pdb[0]["spec"].get("maxUnavailable") == 1 or pdb[0]["spec"].get("minAvailable") is not None
        assert deployment["spec"]["replicas"] >= 2, "several replicas, so a budget leaves one running"
        svc = services[name]
        assert selector_matches(svc["spec"]["selector"], labels)
        (port,) = svc["spec"]["ports"]
        assert port["port"] == PROCESSES[name].port


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_deployment_probes_real_paths_on_its_real_port(name):
    deployment = by_kind(base_documents(), "Deployment")[name]
    container = container_of(deployment)
    port = PROCESSES[name].port
    assert container["args"] == [name]
    ready, alive = container["readinessProbe"], container["livenessProbe"]
    assert ready["httpGet"]["path"] == "/readyz" and probe_port(container, ready) == port
    assert alive["httpGet"]["path"] == "/healthz" and probe_port(container, alive) == port
    if "startupProbe" in container:
        assert probe_port(container, container["startupProbe"]) == port
    cls = PROCESSES[name].settings_class()
    if cls is not None:
        assert env_names(cls)[f"REHAB_{name.upper()}_PORT"].default == port, "the settings' default port"


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_deployment_serves_metrics_on_a_named_port_no_service_carries(name):
    deployment = by_kind(base_documents(), "Deployment")[name]
    container = container_of(deployment)
    process = PROCESSES[name]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": process.port, "metrics": process.metrics_port}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["REHAB_METRICS_PORT"] == str(process.metrics_port)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(process.metrics_port),
                           "prometheus.io/path": "/metrics"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            assert probe_port(container, container[probe]) == process.port
    for service in by_kind(base_documents(), "Service").values():
        for port in service["spec"]["ports"]:
            assert port.get("targetPort") != "metrics" and port["port"] not in METRICS_PORTS.values()
            assert port.get("targetPort") not in METRICS_PORTS.values()


def namespaces_admitted(labels: dict[str, str], port: int) -> set[str]:
    """The namespaces (by kubernetes.io/metadata.name) some policy admits to pods with `labels` on `port`."""
    found: set[str] = set()
    for policy in policies().values():
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not selector_matches(spec["podSelector"].get("matchLabels", {}),
                                                                          labels):
            continue
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            for peer in rule.get("from", [{"namespaceSelector": {}}]):
                if "namespaceSelector" in peer:
                    found.add(peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name", "*"))
    return found


def test_only_the_monitoring_namespace_may_scrape_and_only_the_metrics_ports():
    for process in PROCESSES.values():
        labels = pod_labels(process.name)
        assert namespaces_admitted(labels, process.metrics_port) == {"monitoring"}
        assert "monitoring" not in namespaces_admitted(labels, process.port), "the main port is not for scraping"
        for other in PROCESSES.values():  # no pod of ours reaches another's metrics
            assert not allowed("ingress", pod_labels(other.name), labels, process.metrics_port)
    assert namespaces_admitted(pod_labels("gateway"), 8000) == {"ingress-nginx"}


def test_the_ingress_leads_to_the_gateways_http_port_only():
    for ingress in by_kind(load_documents(PRODUCTION / "ingress.yaml"), "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    (port,) = by_kind(base_documents(), "Service")["gateway"]["spec"]["ports"]
    assert port["name"] == "http" and port["targetPort"] == "http" and port["port"] == PROCESSES["gateway"].port


def test_the_ingress_takes_a_document_where_the_gateway_does_and_a_small_body_elsewhere():
    """A document (up to 20 MiB) reaches the gateway through the ingress on the upload paths alone: nginx's own 413
    before it would break the documented limit; a large body anywhere else stops at the edge."""
    ingresses = by_kind(load_documents(PRODUCTION / "ingress.yaml"), "Ingress")
    megabytes = {name: int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
                           .removesuffix("m")) for name, ingress in ingresses.items()}
    assert 1 <= megabytes["gateway"] * 1024 * 1024 / GatewaySettings.model_fields["max_body_bytes"].default < 2
    assert megabytes["gateway-uploads"] * 1024 * 1024 >= DOCUMENT_BODY_BYTES
    upload_paths = [path["path"] for rule in ingresses["gateway-uploads"]["spec"]["rules"]
                    for path in rule["http"]["paths"]]
    case = "0b6f2c1e-6b1a-4b1e-9c1d-2f3a4b5c6d7e"
    for sent in (f"/api/intake/cases/{case}/documents", f"/console/cases/{case}/documents"):
        assert any(re.fullmatch(path.removesuffix("$"), sent) for path in upload_paths), sent
        assert any(upload.covers({"method": "POST", "path": sent}) for upload in UPLOADS), sent
    for elsewhere in (f"/api/intake/cases/{case}/notes", "/auth/token", f"/api/intake/cases/{case}/documents/x"):
        assert not any(re.fullmatch(path.removesuffix("$"), elsewhere) for path in upload_paths), elsewhere


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_deployment_requests_resources_and_runs_locked_down(name):
    deployment = by_kind(base_documents(), "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(deployment)
    requests = container["resources"]["requests"]
    assert requests.get("cpu") and requests.get("memory")
    assert container["resources"]["limits"].get("memory")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]


def deployment_env(name: str, configmaps: dict[str, dict[str, str]],
                   secret_values: dict[tuple[str, str], str]) -> dict[str, str]:
    """A container's environment as the kubelet builds it: envFrom first, then env in order with $(VAR) expanded."""
    container = container_of(by_kind(base_documents(), "Deployment")[name])
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            value = item["value"]
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value):
                assert ref in env, f"{name}: $({ref}) in {item['name']} is not defined before it"
                value = value.replace(f"$({ref})", env[ref])
            env[item["name"]] = value
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_values[(ref["name"], ref["key"])]
    return env


def production_configmaps() -> dict[str, dict[str, str]]:
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    overlay = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())
    maps = {}
    for name in ("rehab-common", "rehab-services"):
        maps[name] = kustomization_literals(base, name) | kustomization_literals(overlay, name)
    return maps


def secret_keys_used(name: str) -> set[tuple[str, str]]:
    container = container_of(by_kind(base_documents(), "Deployment")[name])
    return {(i["valueFrom"]["secretKeyRef"]["name"], i["valueFrom"]["secretKeyRef"]["key"])
            for i in container.get("env", []) if "valueFrom" in i}


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_deployment_gives_its_process_every_setting_it_needs(name, monkeypatch):
    process = PROCESSES[name]
    used = secret_keys_used(name)
    values = {ref: f"secret{ref[0].replace('-', '')}{ref[1]}" for ref in used}
    env = deployment_env(name, production_configmaps(), values)
    assert process.required_env <= set(env), f"missing: {process.required_env - set(env)}"
    assert env["REHAB_HOST"] == "0.0.0.0"
    assert env[f"REHAB_{process.upper}_PORT"] == str(process.port)
    db_password = values[(f"rehab-db-{name}", "password")]
    assert env[f"REHAB_{process.upper}_DATABASE_URL"] == (
        f"postgresql+psycopg://{name}:{db_password}@rehab-pg-rw:5432/{name}"
        "?sslmode=verify-full&sslrootcert=/etc/rehab/postgres-ca/ca.crt")
    # Every process logs in to NATS as its own user, over TLS, with only its own password.
    nats_password = values[("rehab-nats-users", name)]
    assert env["REHAB_NATS_URL"] == f"tls://{name}:{nats_password}@nats:4222"
    assert env["REHAB_STREAM_REPLICAS"] == "3"
    assert env["SSL_CERT_FILE"] == "/etc/rehab/nats-ca/ca.crt"
    assert {ref for ref in used if ref[0] == "rehab-nats-users"} == {("rehab-nats-users", name)}
    nats_ca = next(m for m in container_of(by_kind(base_documents(), "Deployment")[name])["volumeMounts"]
                   if m["name"] == "nats-ca")
    assert nats_ca["mountPath"] == "/etc/rehab/nats-ca" and nats_ca["readOnly"] is True
    if not process.is_service:
        assert ("rehab-gateway-admin", "password") in used
        for backend in SERVICES:
            assert env[f"REHAB_{backend.upper}_URL"] == f"http://{backend.name}:{backend.port}"
        assert_trusts_no_proxy_by_default(env)
    assert {ref for ref in used if ref[0].startswith("rehab-db-")} == {(f"rehab-db-{name}", "password")}

    deployment = by_kind(base_documents(), "Deployment")[name]
    keys_volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "keys")
    mount = next(m for m in container_of(deployment)["volumeMounts"] if m["name"] == "keys")
    # Its own Secret, where it looks for its keys: $REHAB_SECRETS_DIR/<process> (SPEC §8, kit.secrets).
    own = Path(env["REHAB_SECRETS_DIR"]) / name
    assert mount["mountPath"] == str(own) and mount["readOnly"] is True
    assert keys_volume["secret"]["secretName"] == f"rehab-{name}-keys"
    assert keys_volume["secret"]["defaultMode"] == 0o440, "readable by the pod's group (fsGroup), nobody else"
    assert "items" not in keys_volume["secret"], "every key of the Secret, under the name it was generated with"
    files = set(key_secret_files(name))
    assert files == set(process.keys)
    check_settings_against_class(process, {k: v for k, v in env.items() if k.startswith("REHAB_")},
                                 {own / file for file in files}, monkeypatch)


def key_secret_files(process: str) -> dict[str, str]:
    """The production overlay's key Secret of a process: key in the Secret → the file it is generated from."""
    generators = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())["secretGenerator"]
    (generator,) = [g for g in generators if g["name"] == f"rehab-{process}-keys"]
    assert "envs" not in generator and "literals" not in generator
    files = dict(entry.split("=", 1) for entry in generator["files"])
    assert len(files) == len(generator["files"]), "each key once"
    return files


def test_each_deployment_mounts_only_its_own_process_s_key_secret():
    """SPEC §8, one keyring per service: one key Secret per process, generated from that process's folder only
    (secrets/keys/<process>/), mounted by that process's Deployment only; the gateway's holds no KEK and no
    blind-index key. No pod can read another process's keys."""
    key_secrets = {f"rehab-{name}-keys" for name in PROCESSES}
    generators = {g["name"] for g in yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())["secretGenerator"]}
    assert key_secrets <= generators
    assert not {g for g in generators if g.endswith("-keys")} - key_secrets, "no shared key Secret"
    for name in PROCESSES:
        for key, source in key_secret_files(name).items():
            assert source == f"secrets/keys/{name}/{key}", f"rehab-{name}-keys: {key} from {source}"
    assert not set(key_secret_files("gateway")) & SERVICE_ONLY_KEYS, "the gateway holds no field-encryption key"
    assert NATS_SEED_FILE not in {key for name in PROCESSES for key in key_secret_files(name)}, \
        "the deployments' NATS users log in with passwords"
    mounted_by: dict[str, set[str]] = {}
    for name, deployment in by_kind(base_documents(), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        named: set[str] = set()
        for volume in pod["volumes"]:
            if "secret" in volume:
                named.add(volume["secret"]["secretName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    named.add(source["secret"]["name"])
        for container in pod["containers"] + pod.get("initContainers", []):
            for item in container.get("env", []):
                if "secretKeyRef" in item.get("valueFrom", {}):
                    named.add(item["valueFrom"]["secretKeyRef"]["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    named.add(source["secretRef"]["name"])
        assert named & key_secrets == {f"rehab-{name}-keys"}, f"{name} reads {named & key_secrets}"
        for other in set(PROCESSES) - {name}:
            assert not any(other in secret for secret in named - {"rehab-nats-users"}), \
                f"{name} mounts a Secret of {other}: {sorted(named)}"
        mounted_by.setdefault(f"rehab-{name}-keys", set()).add(name)
    assert mounted_by == {f"rehab-{name}-keys": {name} for name in PROCESSES}


def test_the_secrets_the_deployments_read_are_generated_with_those_keys():
    overlay = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())
    generators = {g["name"]: g for g in overlay["secretGenerator"]}
    env_keys = {"rehab-nats-users": {"intake", "referrals", "funds", "reports", "gateway", "ops"},
                "rehab-gateway-admin": {"password"}}
    env_keys |= {f"rehab-db-{p}": {"username", "password"} for p in PROCESSES}
    for name in PROCESSES:
        for secret, key in secret_keys_used(name):
            assert secret in generators, secret
            assert key in env_keys[secret], (secret, key)
    for process in PROCESSES.values():
        generator = generators[f"rehab-db-{process.name}"]
        assert generator["type"] == "kubernetes.io/basic-auth", "the form CloudNativePG reads"
        assert generator["options"]["disableNameSuffixHash"] is True, "referenced by name from the Cluster"
    assert generators["rehab-nats-users"]["options"]["disableNameSuffixHash"] is True, "read by the Helm release"


# ==== Kubernetes: network policies ==================================================================================


@functools.cache
def policies() -> dict[str, dict[str, Any]]:
    return by_kind(load_documents(BASE / "network-policies.yaml"), "NetworkPolicy")


def pod_labels(name: str) -> dict[str, str]:
    return by_kind(base_documents(), "Deployment")[name]["spec"]["template"]["metadata"]["labels"]


NATS_POD = {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats"}
POSTGRES_POD = {"cnpg.io/cluster": "rehab-pg", "cnpg.io/podRole": "instance"}


def allowed(direction: str, source: dict[str, str], target: dict[str, str], port: int) -> bool:
    """Whether some policy opens `direction` traffic between these pod labels (same namespace) on this port."""
    selected, peer = (target, source) if direction == "ingress" else (source, target)
    key = "from" if direction == "ingress" else "to"
    for policy in policies().values():
        spec = policy["spec"]
        if direction.capitalize() not in spec["policyTypes"] or not selector_matches(
                spec["podSelector"].get("matchLabels", {}), selected):
            continue
        for rule in spec.get(direction, []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            peers = rule.get(key)
            if peers is None:
                return True
            for p in peers:
                if "podSelector" in p and "namespaceSelector" not in p and selector_matches(
                        p["podSelector"].get("matchLabels", {}), peer):
                    return True
    return False


def test_everything_is_denied_first():
    deny = policies()["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


# Services talk through events, with two exceptions: referrals and funds hand intake a break-glass reason stated to
# them (kit.need_to_know.ReasonKeeper), since only intake holds a key of the case to keep it with; and intake tells
# referrals at once of a consent narrowed or a case erased (services/intake/referrals_told.py).
CALLS_BETWEEN_SERVICES = {("referrals", "intake"), ("funds", "intake"), ("intake", "referrals")}


def test_the_gateway_reaches_the_services_and_only_the_gateway_does():
    gateway = pod_labels("gateway")
    for service in SERVICES:
        labels = pod_labels(service.name)
        assert allowed("egress", gateway, labels, service.port)
        assert allowed("ingress", gateway, labels, service.port)
        for other in SERVICES:
            calls = (other.name, service.name) in CALLS_BETWEEN_SERVICES
            assert allowed("ingress", pod_labels(other.name), labels, service.port) is calls, (other.name, service.name)
            assert allowed("egress", pod_labels(other.name), labels, service.port) is calls, (other.name, service.name)
    ingress = policies()["gateway"]["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [8000]


def test_the_services_and_the_gateway_reach_nats_and_postgres():
    for process in PROCESSES.values():  # the gateway publishes who the staff are
        labels = pod_labels(process.name)
        assert allowed("egress", labels, NATS_POD, 4222) and allowed("ingress", labels, NATS_POD, 4222)
        assert allowed("egress", labels, POSTGRES_POD, 5432) and allowed("ingress", labels, POSTGRES_POD, 5432)
        assert not allowed("egress", labels, NATS_POD, 6222) and not allowed("ingress", labels, NATS_POD, 6222)
    assert allowed("egress", NATS_POD, NATS_POD, 6222) and allowed("ingress", NATS_POD, NATS_POD, 6222)


def test_every_policy_selects_pods_that_exist():
    known = [pod_labels(p) for p in PROCESSES] + [NATS_POD, POSTGRES_POD]
    for name, policy in policies().items():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert any(selector_matches(selector, labels) for labels in known), name


# ==== Kubernetes: NATS, PostgreSQL, TLS =============================================================================


def test_the_nats_helm_values_make_a_three_node_jetstream_cluster_with_tls():
    values = yaml.safe_load(NATS_VALUES.read_text())
    config = values["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] == 3
    assert config["jetstream"]["enabled"] is True
    assert config["jetstream"]["fileStore"]["enabled"] is True
    assert config["jetstream"]["fileStore"]["pvc"]["enabled"] is True
    certificate = by_kind(load_documents(PRODUCTION / "nats-tls.yaml"), "Certificate")["nats-server-tls"]
    for section in ("nats", "cluster"):
        assert config[section]["tls"]["enabled"] is True
        assert config[section]["tls"]["secretName"] == certificate["spec"]["secretName"]
    host = production_configmaps()["rehab-services"]["NATS_ADDRESS"].split(":")[0]
    assert host in certificate["spec"]["dnsNames"], "the name the services connect to is in the certificate"
    assert "client auth" in certificate["spec"]["usages"] and "server auth" in certificate["spec"]["usages"]
    assert re.fullmatch(r"\d+\.\d+\.\d+-alpine", values["container"]["image"]["tag"])
    assert values["natsBox"]["enabled"] is False


def test_the_nats_users_are_confined_to_their_own_subjects_in_the_helm_values():
    values = yaml.safe_load(NATS_VALUES.read_text())
    users = {u["user"]: u for u in values["config"]["merge"]["accounts"]["REHAB"]["users"]}
    assert set(users) == {"intake", "referrals", "funds", "reports", "gateway", "ops"}
    env = values["container"]["env"]
    for service in NATS_PROCESSES:
        user = users[service.name]
        variable = f"NATS_{service.upper}_PASSWORD"
        assert user["password"] == f"<< ${variable} >>"
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "rehab-nats-users", "key": service.name}
        publish, subscribe = expected_permissions(service.name)
        assert set(user["permissions"]["publish"]["allow"]) == publish
        assert set(user["permissions"]["subscribe"]["allow"]) == subscribe
        own = [s for s in publish if s.startswith("rehab.")]
        # its events, its audit checkpoints; intake the erasure ledger; the gateway the operator's commands (a seal)
        extra = {"intake": {"rehab.erasures.case"}, "gateway": {"rehab.control.>", "rehab.seal.state"}}.get(service.name, set())
        assert set(own) == {f"rehab.{service.name}.>", f"rehab.audit.{service.name}.>", *extra}
    assert env["NATS_OPS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rehab-nats-users", "key": "ops"}


def nats_conf_users() -> dict[str, dict[str, set[str]]]:
    """The user blocks of deploy/nats/nats-server.conf: password variable and the quoted subjects per list."""
    text = NATS_CONF.read_text()
    users: dict[str, dict[str, set[str]]] = {}
    blocks = re.split(r"\n\s*(?:\{\s*)?user: ", text)[1:]
    for block in blocks:
        name = re.match(r"(\w+)", block).group(1)
        password = re.search(r"password: \$(\w+)", block).group(1)
        publish_part, _, subscribe_part = block.partition("subscribe:")
        users[name] = {
            "password": {password},
            "publish": set(re.findall(r'"([^"]+)"', publish_part)),
            "subscribe": set(re.findall(r'"([^"]+)"', subscribe_part)),
        }
    return users


def test_the_nats_users_are_confined_to_their_own_subjects_in_the_compose_config():
    users = nats_conf_users()
    assert set(users) == {"intake", "referrals", "funds", "reports", "gateway", "ops"}
    for service in NATS_PROCESSES:
        publish, subscribe = expected_permissions(service.name)
        assert users[service.name]["password"] == {f"NATS_{service.upper}_PASSWORD"}
        assert users[service.name]["publish"] == publish
        assert users[service.name]["subscribe"] == subscribe
    assert "no_auth_user" not in NATS_CONF.read_text()


def test_the_postgres_cluster_has_a_role_and_a_database_per_process():
    docs = load_documents(PRODUCTION / "postgres-cluster.yaml")
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    assert cluster["metadata"]["name"] == "rehab-pg"
    assert cluster["spec"]["instances"] >= 3
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d for d in docs if d["kind"] == "Database"}
    assert set(roles) == set(databases) == set(PROCESSES)
    hba = cluster["spec"]["postgresql"]["pg_hba"]
    for name in PROCESSES:
        role = roles[name]
        assert role["login"] is True and role["superuser"] is False and role["createrole"] is False
        assert role["passwordSecret"]["name"] == f"rehab-db-{name}"
        assert databases[name]["spec"]["owner"] == name
        assert databases[name]["spec"]["cluster"]["name"] == "rehab-pg"
        assert f"hostssl {name} {name} all scram-sha-256" in hba
    assert hba[-1] == "host all all all reject"
    assert "POSTGRES_ADDRESS=rehab-pg-rw:5432" in yaml.safe_load((BASE / "kustomization.yaml").read_text())[
        "configMapGenerator"][0]["literals"]


def test_production_runs_several_replicas_and_r3_streams():
    overlay = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())
    assert overlay["namespace"] == "rehab"
    assert {r["name"]: r["count"] for r in overlay["replicas"]} == {p: 3 for p in PROCESSES}
    services = production_configmaps()["rehab-services"]
    assert services["REHAB_STREAM_REPLICAS"] == "3"
    assert services["NATS_SCHEME"] == "tls"
    cls = PROCESSES["intake"].settings_class()
    if cls is not None:
        assert "REHAB_STREAM_REPLICAS" in env_names(cls)


# ==== make-secrets.sh and the rendered overlay ======================================================================


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[list[dict[str, Any]], Path]:
    """The production overlay built by kustomize (kubectl's own), after make-secrets.sh filled secrets/; and that
    secrets/ folder."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    work = tmp_path_factory.mktemp("render")
    shutil.copytree(K8S, work / "k8s")
    secrets_dir = work / "k8s" / "overlays" / "production" / "secrets"
    rehab = Path(sys.executable).parent / "rehab"
    subprocess.run(["sh", str(MAKE_SECRETS), "k8s", str(secrets_dir)], check=True, capture_output=True,
                   env={**os.environ, "REHAB": str(rehab)})
    result = subprocess.run([kubectl, "kustomize", str(work / "k8s" / "overlays" / "production")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d], secrets_dir


@pytest.fixture(scope="module")
def rendered_overlay(rendered) -> list[dict[str, Any]]:
    return rendered[0]


def run_make_secrets(mode: str, directory: Path) -> subprocess.CompletedProcess:
    rehab = Path(sys.executable).parent / "rehab"
    return subprocess.run(["sh", str(MAKE_SECRETS), mode, str(directory)], check=True, capture_output=True,
                          text=True, env={**os.environ, "REHAB": str(rehab)})


def check_key_folders(keys: Path) -> None:
    """`rehab secrets init`'s layout (kit.secrets): one folder per process and nothing flat beside them; each
    process's folder holds what its deployments mount (and its NATS nkey), and each service's keyring is its own."""
    assert {p.name for p in keys.iterdir()} == {*PROCESSES, "ops"}
    assert all(p.is_dir() for p in keys.iterdir()), "no key file flat in keys/ any more"
    for name, process in PROCESSES.items():
        files = {p.name for p in (keys / name).iterdir()}
        assert files >= set(process.keys), f"{name}: {set(process.keys) - files} missing"
        assert files - set(process.keys) <= NOT_MOUNTED, f"{name}: what is {files - set(process.keys)}?"
    assert not {p.name for p in (keys / "gateway").iterdir()} & SERVICE_ONLY_KEYS
    for file in SERVICE_ONLY_KEYS | {"audit.key", "audit_signing.pem"}:
        holders = [name for name in PROCESSES if (keys / name / file).exists()]
        contents = {(keys / name / file).read_bytes() for name in holders}
        assert len(contents) == len(holders), f"{file}: each process has one of its own"


def test_make_secrets_never_overwrites_and_writes_owner_only(tmp_path):
    run_make_secrets("k8s", tmp_path)
    first = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p.name for p in first} >= {"kek.json", "token_signing.pem", "db-intake.env", "nats-users.env",
                                       "gateway-admin.env"}
    check_key_folders(tmp_path / "keys")
    for path in first:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
    for folder in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, f"{folder} is open to others"
    # Every file the overlay's key Secrets are generated from is there.
    for name in PROCESSES:
        for source in key_secret_files(name).values():
            assert (tmp_path / source.removeprefix("secrets/")).is_file(), source
    run_make_secrets("k8s", tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == first
    passwords = dict(line.split("=", 1) for line in (tmp_path / "nats-users.env").read_text().split())
    assert set(passwords) == {"intake", "referrals", "funds", "reports", "gateway", "ops"}
    assert len(set(passwords.values())) == 6 and all(re.fullmatch(r"[0-9a-f]{64}", v) for v in passwords.values())

    compose_dir = tmp_path / "compose"
    run_make_secrets("compose", compose_dir)
    values = dict(line.split("=", 1) for line in (compose_dir / "rehab.env").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert set(values) == SECRET_VARS
    assert values["REHAB_KEYS_DIR"] == str(compose_dir / "keys")
    check_key_folders(compose_dir / "keys")
    effective = interpolate(load_compose(), values)  # every variable compose requires is in the file
    for name, spec in effective["secrets"].items():  # and every key file compose mounts is where it says
        assert Path(spec["file"]).is_file(), name


def test_make_secrets_moves_an_earlier_flat_folder_into_one_per_process(tmp_path):
    """An installation of an earlier release has its keys flat in keys/, one KEK for all: make-secrets.sh (through
    `rehab secrets init`) moves them into the per-process folders, each service keeping a copy of the old KEK, so
    every record still opens; `rehab keys rotate` and `rehab keys retire` then give each its own (README)."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    old = {"kek.json": b'{"active": "k1", "keys": {"k1": "' + b"A" * 43 + b'="}}',
           "blind_index.key": b"B" * 43 + b"=", "audit.key": b"C" * 43 + b"="}
    for file, content in old.items():
        (keys / file).write_bytes(content)
    run_make_secrets("k8s", tmp_path)
    check_flat = [p.name for p in keys.iterdir() if p.is_file()]
    assert check_flat == [], f"left flat: {check_flat}"
    for name in PROCESSES:
        for file, content in old.items():
            if file in SERVICE_ONLY_KEYS and not PROCESSES[name].holds_data_keys:
                assert not (keys / name / file).exists(), f"{name} got {file}"
            else:
                assert (keys / name / file).read_bytes() == content, f"{name} lost the old {file}"


def test_the_rendered_overlay_wires_every_reference(rendered):
    docs, secrets_dir = rendered
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"rehab"}
    secrets = by_kind(docs, "Secret")
    configmaps = by_kind(docs, "ConfigMap")
    certificates = {d["spec"]["secretName"] for d in docs if d["kind"] == "Certificate"}
    external = {"rehab-pg-ca"}  # made by the CloudNativePG operator for the cluster rehab-pg
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(PROCESSES)
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] == 3
        pod = deployment["spec"]["template"]["spec"]
        container = container_of(deployment)
        assert container["image"] == "registry.example.org/rehab/rehab-support:0.1.0"
        for source in container["envFrom"]:
            assert source["configMapRef"]["name"] in configmaps
        for item in container["env"]:
            if "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]]["data"], (name, ref)
        for volume in pod["volumes"]:
            if "secret" in volume:
                secret_name = volume["secret"]["secretName"]
                assert secret_name in secrets or secret_name in certificates or secret_name in external
                if volume["name"] == "keys":
                    # Its own key Secret (with kustomize's hash suffix), made from its own folder's files.
                    assert re.fullmatch(rf"rehab-{name}-keys-[a-z0-9]+", secret_name), (name, secret_name)
                    data = secrets[secret_name]["data"]
                    assert set(data) == set(PROCESSES[name].keys)
                    for key, value in data.items():
                        assert base64.b64decode(value) == (secrets_dir / "keys" / name / key).read_bytes(), key
                    mount = next(m for m in container["volumeMounts"] if m["name"] == "keys")
                    assert mount["mountPath"] == f"{configmaps_env(configmaps, container)['REHAB_SECRETS_DIR']}/{name}"
                if volume["name"] == "nats-ca":
                    assert volume["secret"]["optional"] is False
    for process in PROCESSES.values():
        db = secrets[f"rehab-db-{process.name}"]
        assert db["type"] == "kubernetes.io/basic-auth"
        assert set(db["data"]) == {"username", "password"}
    assert set(secrets["rehab-nats-users"]["data"]) == {"intake", "referrals", "funds", "reports", "gateway", "ops"}
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Cluster", "Database", "Certificate", "Issuer", "Ingress", "NetworkPolicy",
            "PodDisruptionBudget"} <= kinds


def configmaps_env(configmaps: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    return env


def test_only_the_gateway_is_exposed(rendered_overlay):
    for doc in rendered_overlay:
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]
    ingresses = [d for d in rendered_overlay if d["kind"] == "Ingress"]
    backends = {path["backend"]["service"]["name"] for ing in ingresses for rule in ing["spec"]["rules"]
                for path in rule["http"]["paths"]}
    assert backends == {"gateway"}


def test_the_base_renders_on_its_own():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert kinds.count("Deployment") == kinds.count("PodDisruptionBudget") == len(PROCESSES)
