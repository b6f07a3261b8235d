"""The OpenBao custody overlay (deploy/k8s/overlays/openbao), read as data: each service runs as a ServiceAccount
of its own, bound to an OpenBao role whose policy opens that service's Transit key only; the agent sidecar's token
lands where the service reads it; no kek.json, blind_index.key or audit.key is mounted in a service, keys.transit is. Where `bao` runs, openbao-setup.sh is run against a real
server; where `kubectl` is installed, the overlay is rendered with its kustomize."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.facts import (
    CONTROL_SIGNERS,
    FILE_CUSTODY_KEYS,
    K8S,
    PROCESSES,
    SERVICES,
    TRANSIT_KEYS_FILE,
    env_names,
    load_documents,
)
from tests.support.openbao import OpenBaoDev, bao_binary, bao_runs

# The services under OpenBao custody: those holding data keys. Reports holds none and stays on file custody with its
# audit key, like the gateway.
TRANSIT_SERVICES = [s for s in SERVICES if s.holds_data_keys]
OVERLAY = K8S / "overlays" / "openbao"
TOKEN_FILE = "/var/run/openbao/token"


def patch_of(service: str) -> dict[str, Any]:
    (doc,) = load_documents(OVERLAY / "patches" / f"{service}.yaml")
    return doc


def containers(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (agent,) = pod["initContainers"]
    (service,) = pod["containers"]
    return agent, service


def mounted_at(container: dict[str, Any], path: str) -> str | None:
    """The volume whose mount holds `path` in this container."""
    for mount in container.get("volumeMounts", []):
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return mount["name"]
    return None


def policy_paths(service: str) -> dict[str, set[str]]:
    text = (OVERLAY / "policies" / f"rehab-{service}.hcl").read_text()
    return {path: set(re.findall(r'"(\w+)"', caps))
            for path, caps in re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', text)}


def test_the_overlay_adds_serviceaccounts_and_the_openbao_network_path():
    k = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert k["namespace"] == "rehab" and "../production" in k["resources"]
    accounts = {d["metadata"]["name"]: d for d in load_documents(OVERLAY / "serviceaccounts.yaml")}
    assert set(accounts) == {f"rehab-{s.name}" for s in TRANSIT_SERVICES}
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    (policy,) = load_documents(OVERLAY / "network-policy-openbao.yaml")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "service"
    (rule,) = policy["spec"]["egress"]
    assert [p["port"] for p in rule["ports"]] == [8200]


@pytest.mark.parametrize("service", [s.name for s in TRANSIT_SERVICES])
def test_each_policy_opens_only_its_own_transit_key_and_only_to_wrap_unwrap_rewrap(service):
    key = f"rehab-{service}"
    assert policy_paths(service) == {
        f"transit/encrypt/{key}": {"update"}, f"transit/decrypt/{key}": {"update"},
        f"transit/rewrap/{key}": {"update"}, f"transit/keys/{key}": {"read"},
    }


def test_the_operator_policy_rotates_and_trims_but_never_exports_or_deletes():
    text = (OVERLAY / "policies" / "rehab-keys-admin.hcl").read_text()
    paths = dict(re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', text))
    assert not any("export" in p or "backup" in p or "*" in p or "+" in p for p in paths)
    assert all("delete" not in caps and "sudo" not in caps for caps in paths.values())
    for service in TRANSIT_SERVICES:
        assert f"transit/keys/rehab-{service.name}/rotate" in paths
        assert f"transit/keys/rehab-{service.name}/trim" in paths


@pytest.mark.parametrize("service", [s.name for s in TRANSIT_SERVICES])
def test_each_service_runs_as_its_own_account_with_an_agent_writing_the_token_it_reads(service):
    patch = patch_of(service)
    pod = patch["spec"]["template"]["spec"]
    assert patch["metadata"]["name"] == service
    assert pod["serviceAccountName"] == f"rehab-{service}"
    agent, app = containers(pod)
    assert agent["restartPolicy"] == "Always", "a native sidecar: there before the service starts"
    assert app["name"] == service
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["REHAB_KEY_CUSTODY"] == "openbao"
    assert env["REHAB_OPENBAO_TRANSIT_KEY"] == f"rehab-{service}"
    assert env["REHAB_OPENBAO_TRANSIT_MOUNT"] == "transit"
    assert env["REHAB_OPENBAO_ADDR"].startswith("https://")
    assert env["REHAB_OPENBAO_TOKEN_FILE"] == TOKEN_FILE
    assert not any("TOKEN" in e["name"] and "value" in e and "FILE" not in e["name"] for e in app["env"]), \
        "no token in the environment"

    volumes = {v["name"]: v for v in pod["volumes"]}
    token_volume = mounted_at(app, TOKEN_FILE)
    assert token_volume == mounted_at(agent, TOKEN_FILE) and volumes[token_volume]["emptyDir"]["medium"] == "Memory"
    assert all(m.get("readOnly") for m in app["volumeMounts"] if m["name"] == token_volume)

    agent_config = (OVERLAY / "agent" / f"{service}.hcl").read_text()
    assert re.search(rf'role\s*=\s*"rehab-{service}"', agent_config)
    assert re.search(rf'path\s*=\s*"{TOKEN_FILE}"', agent_config)
    (jwt_path,) = re.findall(r'token_path\s*=\s*"([^"]+)"', agent_config)
    jwt_volume = mounted_at(agent, jwt_path)
    (source,) = volumes[jwt_volume]["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "openbao"
    assert mounted_at(app, jwt_path) is None, "the service never sees its ServiceAccount token"
    assert f"{service}.hcl" in agent["args"][-1]


@pytest.mark.parametrize("service", [s.name for s in TRANSIT_SERVICES])
def test_the_settings_the_overlay_gives_are_ones_the_service_reads(service):
    cls = PROCESSES[service].settings_class()
    known = set(env_names(cls)) if cls is not None else set()
    if "REHAB_OPENBAO_ADDR" not in known:
        pytest.skip("the settings class does not read the OpenBao settings yet (kit/settings.py, custody wiring)")
    (app,) = patch_of(service)["spec"]["template"]["spec"]["containers"]
    given = {e["name"] for e in app["env"] if e["name"].startswith("REHAB_")}
    assert given <= known, given - known


def test_the_setup_script_makes_a_key_a_policy_and_a_bound_role_per_service(tmp_path):
    runs, why = bao_runs()
    if not runs:
        pytest.skip(why)
    server = OpenBaoDev(tmp_path / "bao")
    server.start(mount_transit=False)
    try:
        ca = tmp_path / "k8s-ca.crt"
        ca.write_text(_self_signed_pem())
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BAO": bao_binary(),
               "BAO_ADDR": server.addr, "BAO_TOKEN": server.root_token, "KUBERNETES_CA_CERT": str(ca)}
        for _ in range(2):  # and again: it only rewrites
            result = subprocess.run(["sh", str(OVERLAY / "openbao-setup.sh")], env=env, capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode == 0, result.stderr
        for service in TRANSIT_SERVICES:
            key = f"rehab-{service.name}"
            role = server.api("GET", f"auth/kubernetes/role/{key}").json()["data"]
            assert role["bound_service_account_names"] == [key]
            assert role["bound_service_account_namespaces"] == ["rehab"]
            assert role["token_policies"] == [key] and role["token_no_default_policy"] is True
            assert role["audience"] == "openbao"
            info = server.api("GET", f"transit/keys/{key}").json()["data"]
            assert info["type"] == "aes256-gcm96" and info["exportable"] is False
            policy = server.api("GET", f"sys/policies/acl/{key}").json()["data"]["policy"]
            assert policy == (OVERLAY / "policies" / f"{key}.hcl").read_text()
        assert server.api("GET", "sys/policies/acl/rehab-keys-admin").status_code == 200
    finally:
        server.stop()


def _self_signed_pem() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test kubernetes ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict[str, Any]]:
    """The overlay rendered by kubectl's kustomize, with a placeholder at every secret file the production overlay
    reads (their contents do not matter here)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    work = tmp_path_factory.mktemp("render") / "k8s"
    shutil.copytree(K8S, work)
    for overlay in (work / "overlays" / "production", work / "overlays" / "openbao"):
        for generator in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("secretGenerator", []):
            for source in [f.split("=", 1)[-1] for f in generator.get("files", [])] + generator.get("envs", []):
                path = overlay / source
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("placeholder=placeholder\n")
    result = subprocess.run([kubectl, "kustomize", str(work / "overlays" / "openbao")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_rendered_overlay_runs_each_service_under_openbao_with_keys_transit_and_no_key_file(rendered):
    kinds: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in rendered:
        kinds.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {"rehab"}
    for service in TRANSIT_SERVICES:
        (keys,) = [s for name, s in kinds["Secret"].items() if name.startswith(f"rehab-{service.name}-keys-")]
        data = set(keys.get("data", {}))
        assert TRANSIT_KEYS_FILE in data and CONTROL_SIGNERS in data, (service.name, data)
        assert not data & FILE_CUSTODY_KEYS, f"{service.name}: {data & FILE_CUSTODY_KEYS} under OpenBao custody"
        assert data == set(PROCESSES[service.name].keys) - FILE_CUSTODY_KEYS | {TRANSIT_KEYS_FILE}
        volume = next(v for v in kinds["Deployment"][service.name]["spec"]["template"]["spec"]["volumes"]
                      if v["name"] == "keys")
        assert volume["secret"]["secretName"] == keys["metadata"]["name"]
    # The gateway stays on file custody (a known limit: it holds no data keys).
    (gateway_keys,) = [s for name, s in kinds["Secret"].items() if name.startswith("rehab-gateway-keys-")]
    assert set(gateway_keys["data"]) == set(PROCESSES["gateway"].keys)
    (reports_keys,) = [s for name, s in kinds["Secret"].items() if name.startswith("rehab-reports-keys-")]
    assert set(reports_keys["data"]) == set(PROCESSES["reports"].keys)
    agent_config = [c for name, c in kinds["ConfigMap"].items() if name.startswith("rehab-openbao-agent")]
    assert len(agent_config) == 1
    for service in TRANSIT_SERVICES:
        pod = kinds["Deployment"][service.name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] in kinds["ServiceAccount"]
        agent, app = containers(pod)
        assert agent["image"].startswith("quay.io/openbao/openbao:")
        names = {e["name"] for e in app["env"]}
        assert {"REHAB_KEY_CUSTODY", "REHAB_OPENBAO_ADDR", "REHAB_OPENBAO_TOKEN_FILE"} <= names
        assert "NATS_PASSWORD" in names, "the production settings are kept"
        config_volume = next(v for v in pod["volumes"] if v["name"] == "openbao-agent-config")
        assert config_volume["configMap"]["name"] == agent_config[0]["metadata"]["name"]
    gateway = kinds["Deployment"]["gateway"]["spec"]["template"]["spec"]
    assert "serviceAccountName" not in gateway and not gateway.get("initContainers")
    assert "allow-openbao" in kinds["NetworkPolicy"]


def test_make_secrets_writes_each_service_s_keys_transit_for_the_overlay(tmp_path):
    """`REHAB_KEY_CUSTODY=openbao … deploy/make-secrets.sh k8s` with a rehab-keys-admin token: every file the
    overlay's key Secrets read is made (keys.transit through each service's own Transit key), and again changes
    nothing."""
    runs, why = bao_runs()
    if not runs:
        pytest.skip(why)
    import sys
    from pathlib import Path

    server = OpenBaoDev(tmp_path / "bao")
    server.start(mount_transit=True)
    try:
        for service in TRANSIT_SERVICES:
            assert server.api("POST", f"transit/keys/rehab-{service.name}", {"type": "aes256-gcm96"}).is_success
        policy = (OVERLAY / "policies" / "rehab-keys-admin.hcl").read_text()
        assert server.api("PUT", "sys/policies/acl/rehab-keys-admin", {"policy": policy}).is_success
        token = server.api("POST", "auth/token/create", {"policies": ["rehab-keys-admin"],
                                                         "no_default_policy": True}).json()["auth"]["client_token"]
        env = {**os.environ, "REHAB": str(Path(sys.executable).parent / "rehab"), "REHAB_KEY_CUSTODY": "openbao",
               "OPENBAO_ADDR": server.addr, "OPENBAO_TOKEN": token}
        production, openbao = tmp_path / "production", tmp_path / "openbao"
        for _ in range(2):
            result = subprocess.run(["sh", str(K8S.parent / "make-secrets.sh"), "k8s", str(production), str(openbao)],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            if _ == 0:
                first = {p: p.read_bytes() for p in openbao.rglob("*") if p.is_file()}
        assert {p: p.read_bytes() for p in openbao.rglob("*") if p.is_file()} == first
        overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
        for generator in overlay["secretGenerator"]:
            for source in [f.split("=", 1)[-1] for f in generator.get("files", [])]:
                assert (openbao / source.removeprefix("secrets/")).is_file(), source
        for service in TRANSIT_SERVICES:
            transit = (openbao / "keys" / service.name / TRANSIT_KEYS_FILE).read_text()
            assert transit.startswith("vault:v1:")
            assert not {p.name for p in (openbao / "keys" / service.name).iterdir()} & FILE_CUSTODY_KEYS
        assert sorted(p.name for p in (openbao / "keys").iterdir()) == sorted(s.name for s in TRANSIT_SERVICES)
        assert (production / "keys" / "gateway" / "audit.key").is_file(), "the gateway stays on file custody"
    finally:
        server.stop()


def test_openbao_overlay_readme_mentions_it():
    assert "overlays/openbao" in (K8S.parent / "README.md").read_text()

