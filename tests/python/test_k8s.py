"""Offline checks of the SpinKube deployment in infra/k8s (no cluster, no network).

- `kubectl kustomize infra/k8s` renders;
- every standard object passes the Kubernetes OpenAPI schema (the `kubernetes-validate` package,
  strict: unknown fields are errors), for the oldest and the newest Kubernetes we name;
- the SpinApp passes spin-operator's CRD schema (../shared/k8s/, unknown fields refused as the API
  server refuses them; skipped with a message when that folder is absent);
- the runtime config names only stores and options Spin knows (a typo crash-loops every pod), and
  defines every store label spin.toml uses on a backend that replicas share;
- every SpinApp variable is a variable of spin.toml, every one of them is set, secrets come from
  the Secret; the native Deployments set only environment variables native-transcoder reads;
- references hold (Services, ports, claims, ConfigMaps, KEDA's target and auth, the events URL);
- the Secret recipe (make-secrets.sh --print) produces every key the manifests read, its Redis
  URLs match `redis_host`, its libSQL token verifies under its public key, and its ACL file and
  infra/k8s/redis.conf load into a real redis-server whose users can do what they must and no more.

Run: `python3 -m pytest tests/python` (scripts/test does). Needs kubectl (scripts/lib.sh installs
Debian's kubernetes-client where there is none), openssl, and for the Redis part redis-server.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
CRD = ROOT.parent / "shared" / "k8s" / "core.spinkube.dev_spinapps.yaml"
SECRET = "streamgate-secrets"
# Oldest and newest Kubernetes the standard objects are checked against.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Kinds that are not Kubernetes' own: the SpinApp is checked against its CRD, KEDA's by hand.
CUSTOM_GROUPS = {"core.spinkube.dev", "keda.sh"}

# Spin's runtime-config stores (spin-factor-key-value-* and spin-factor-sqlite): type -> (required
# options, optional options). `type` itself is not an option here.
KV_TYPES = {
    "spin": (set(), {"path"}),
    "redis": ({"url"}, set()),
    "azure_cosmos": ({"account", "database", "container"}, {"key"}),
    "aws_dynamo": ({"region", "table"}, {"consistent_read", "access_key", "secret_key", "token"}),
}
SQLITE_TYPES = {
    "spin": (set(), {"path"}),
    "libsql": ({"url", "token"}, set()),
}
# Store types whose data every replica shares (a `spin` store is a file inside one pod).
SHARED_KV = {"redis", "azure_cosmos", "aws_dynamo"}
SHARED_SQLITE = {"libsql"}


# ---------------------------------------------------------------------------------------------
# fixtures


def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        pytest.fail("kubectl is not on PATH: scripts/test installs Debian's kubernetes-client (scripts/lib.sh)")
    return path


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    out = subprocess.run([kubectl(), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize infra/k8s failed:\n{out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs, "the kustomization rendered nothing"
    return docs


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def one(objects, kind, name=None) -> dict:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def spinapp(objects) -> dict:
    return one(objects, "SpinApp")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return tomllib.loads((ROOT / "spin.toml").read_text())


@pytest.fixture(scope="module")
def secret() -> dict[str, str]:
    """The Secret make-secrets.sh would create, decoded."""
    for tool in ("openssl", "kubectl"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is needed to run infra/k8s/make-secrets.sh --print")
    out = subprocess.run([str(K8S / "make-secrets.sh"), "--print"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"make-secrets.sh --print failed:\n{out.stderr}"
    doc = yaml.safe_load(out.stdout)
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == SECRET
    assert doc["metadata"]["namespace"] == "streamgate"
    return {k: base64.b64decode(v).decode() for k, v in doc["data"].items()}


def variables(spinapp) -> dict[str, dict]:
    return {v["name"]: v for v in spinapp["spec"].get("variables", [])}


def pod_specs(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


# ---------------------------------------------------------------------------------------------
# rendering and schemas


def test_renders_every_part(objects):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for want in [
        ("Namespace", "streamgate"),
        ("SpinApp", "streamgate"),
        ("Deployment", "origin"),
        ("Deployment", "worker"),
        ("StatefulSet", "redis"),
        ("StatefulSet", "libsql"),
        ("PersistentVolumeClaim", "media"),
        ("ScaledObject", "worker"),
        ("Ingress", "media"),
        ("NetworkPolicy", "redis"),
    ]:
        assert want in kinds, f"{want} is not rendered"
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "streamgate", o["metadata"]["name"]
    # No Secret in git, so none rendered: make-secrets.sh makes it.
    assert not find(objects, "Secret")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_standard_objects_pass_the_kubernetes_schema(objects, version):
    checked = 0
    for o in objects:
        if o["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            continue
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']}/{o['metadata']['name']} (Kubernetes {version}): {e.message} at {list(e.path)}")
        checked += 1
    assert checked >= 10


def crd_schema(crd: dict, version: str) -> dict:
    """The CRD's openAPIV3Schema as JSON Schema that refuses unknown fields, as the API server's
    structural pruning and strict field validation do."""
    entry = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = copy.deepcopy(entry["schema"]["openAPIV3Schema"])

    def close(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    # metadata is checked by the API server itself, not by the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def test_spinapp_passes_the_crd_schema(spinapp):
    if not CRD.exists():
        pytest.skip(f"{CRD} is absent: the SpinApp is not checked against spin-operator's CRD")
    crd = yaml.safe_load(CRD.read_text())
    group, version = spinapp["apiVersion"].split("/")
    assert (group, spinapp["kind"]) == (crd["spec"]["group"], crd["spec"]["names"]["kind"])
    schema = crd_schema(crd, version)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(spinapp), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The check itself refuses a misspelt field.
    typo = copy.deepcopy(spinapp)
    typo["spec"]["runtimeConfig"]["keyValueStore"] = typo["spec"]["runtimeConfig"].pop("keyValueStores")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(typo))


def test_spinapp_shape(spinapp):
    spec = spinapp["spec"]
    assert spinapp["apiVersion"] == "core.spinkube.dev/v1alpha1"
    assert spec["executor"] == "containerd-shim-spin"
    assert spec["checks"]["liveness"]["httpGet"]["path"] == "/health"
    assert spec["checks"]["readiness"]["httpGet"]["path"] == "/ready"


# ---------------------------------------------------------------------------------------------
# runtime config


def runtime_config_errors(stores: dict[str, dict[str, dict]]) -> list[str]:
    """`stores` is {"key_value_store": {label: {"type": ..., option: value}}, "sqlite_database": ...}
    as in a runtime-config TOML file. Returns what Spin would refuse."""
    errors = []
    for section, types in (("key_value_store", KV_TYPES), ("sqlite_database", SQLITE_TYPES)):
        for label, entry in stores.get(section, {}).items():
            where = f"[{section}.{label}]"
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", label):
                errors.append(f"{where}: not a store label Spin accepts")
            kind = entry.get("type")
            if kind not in types:
                errors.append(f"{where}: type {kind!r} is not one of {sorted(types)}")
                continue
            required, optional = types[kind]
            options = set(entry) - {"type"}
            for name in sorted(options - required - optional):
                errors.append(f"{where}: option {name!r} is not one Spin knows for type {kind!r} ({sorted(required | optional)})")
            for name in sorted(required - options):
                errors.append(f"{where}: type {kind!r} needs option {name!r}")
    return errors


def spinapp_stores(spinapp) -> dict[str, dict[str, dict]]:
    rc = spinapp["spec"].get("runtimeConfig", {})
    stores: dict[str, dict[str, dict]] = {"key_value_store": {}, "sqlite_database": {}}
    for field, section in (("keyValueStores", "key_value_store"), ("sqliteDatabases", "sqlite_database")):
        for store in rc.get(field, []):
            assert store["name"] not in stores[section], f"{section} {store['name']} is defined twice"
            entry = {"type": store["type"]}
            for option in store.get("options", []):
                assert option["name"] not in entry, f"option {option['name']} of {store['name']} given twice"
                assert ("value" in option) != ("valueFrom" in option), f"option {option['name']}: value or valueFrom"
                entry[option["name"]] = option.get("value", option.get("valueFrom"))
            stores[section][store["name"]] = entry
    return stores


def test_runtime_config_checker_catches_typos():
    good = {"key_value_store": {"default": {"type": "redis", "url": "redis://x"}},
            "sqlite_database": {"default": {"type": "libsql", "url": "http://x", "token": "t"}}}
    assert runtime_config_errors(good) == []
    assert runtime_config_errors({"key_value_store": {"default": {"type": "redis", "uri": "redis://x"}}})
    assert runtime_config_errors({"key_value_store": {"default": {"type": "rediss", "url": "redis://x"}}})
    assert runtime_config_errors({"sqlite_database": {"default": {"type": "libsql", "url": "http://x"}}})
    assert runtime_config_errors({"sqlite_database": {"default": {"type": "spin", "file": "x.db"}}})


def test_spinapp_runtime_config_is_one_spin_knows(spinapp, manifest):
    stores = spinapp_stores(spinapp)
    assert runtime_config_errors(stores) == []
    # Every label a component uses is defined, on a store all replicas share when there are several.
    replicas = spinapp["spec"].get("replicas", 1)
    for field, section, shared in (
        ("key_value_stores", "key_value_store", SHARED_KV),
        ("sqlite_databases", "sqlite_database", SHARED_SQLITE),
    ):
        used = {label for c in manifest["component"].values() for label in c.get(field, [])}
        for label in sorted(used):
            assert label in stores[section], f"spin.toml uses {section} {label!r}; the SpinApp's runtime config does not define it (it would be a file in each pod)"
            if replicas > 1:
                kind = stores[section][label]["type"]
                assert kind in shared, f"{section} {label!r} is {kind!r} with {replicas} replicas: each pod would have its own"


def test_runtime_config_files_name_options_spin_knows():
    """Any runtime-config TOML in infra/ (e.g. infra/runtime-config.toml for `spin up`)."""
    files = sorted((ROOT / "infra").rglob("runtime-config*.toml"))
    for path in files:
        parsed = tomllib.loads(path.read_text())
        stores = {s: parsed.get(s, {}) for s in ("key_value_store", "sqlite_database")}
        assert runtime_config_errors(stores) == [], path


# ---------------------------------------------------------------------------------------------
# variables


def test_every_spinapp_variable_is_one_of_spin_toml(spinapp, manifest):
    declared = manifest["variables"]
    entries = spinapp["spec"]["variables"]
    names = [v["name"] for v in entries]
    assert len(names) == len(set(names)), "a variable is set twice"
    unknown = sorted(set(names) - set(declared))
    assert not unknown, f"not variables of spin.toml (typo?): {unknown}"
    missing = sorted(set(declared) - set(names))
    assert not missing, f"spin.toml variables the SpinApp does not set: {missing}"
    for v in entries:
        assert ("value" in v) != ("valueFrom" in v), f"{v['name']}: value or valueFrom"
        if declared[v["name"]].get("secret"):
            ref = v.get("valueFrom", {}).get("secretKeyRef")
            assert ref and ref["name"] == SECRET, f"secret variable {v['name']} must come from the Secret {SECRET}"
        if declared[v["name"]].get("required"):
            assert not v.get("valueFrom", {}).get("secretKeyRef", {}).get("optional"), f"required {v['name']} is optional"


def test_every_spin_variable_env_anywhere_is_one_of_spin_toml(objects, manifest):
    """SPIN_VARIABLE_<NAME> set as environment on any container (e.g. a sidecar or an overlay)."""
    for o, spec in pod_specs(objects):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                if env["name"].startswith("SPIN_VARIABLE_"):
                    name = env["name"].removeprefix("SPIN_VARIABLE_").lower()
                    assert name in manifest["variables"], f"{o['metadata']['name']}: {env['name']} is no variable of spin.toml"


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def test_variables_agree_with_each_other_and_the_ingress(spinapp, objects):
    vs = {name: v.get("value") for name, v in variables(spinapp).items()}
    ingress_hosts = {r["host"] for i in find(objects, "Ingress") for r in i["spec"]["rules"]}
    assert host_of(vs["siwe_uri"]) == vs["siwe_domain"]
    for name in ("siwe_domain",):
        assert vs[name] in ingress_hosts
    for name in ("media_base_url", "stream_base_url", "siwe_uri"):
        assert host_of(vs[name]) in ingress_hosts, f"{name} names a host no Ingress serves"
    # allowed_outbound_hosts: the chain RPC hosts must be the ones the URLs name.
    allowed = {"http": vs["chain_rpc_http_host"], "https": vs["chain_rpc_https_host"]}
    assert all(allowed.values()), "an empty *_host makes released Spin refuse the manifest"
    for pair in vs["chain_rpc_urls"].split(","):
        _, url = pair.split("=", 1)
        parts = urlsplit(url)
        assert parts.netloc == allowed[parts.scheme] or parts.hostname == allowed[parts.scheme], url


# ---------------------------------------------------------------------------------------------
# the native side


def native_env_names() -> set[str]:
    names = set()
    for path in (ROOT / "native-transcoder" / "src").rglob("*.rs"):
        names |= set(re.findall(r'"(STREAMGATE_[A-Z0-9_]+)"', path.read_text()))
    return names


@pytest.mark.parametrize("name,role", [("origin", "serve"), ("worker", "work")])
def test_native_deployments(objects, name, role):
    deployment = one(objects, "Deployment", name)
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"][0] == role
    known = native_env_names()
    assert known, "no STREAMGATE_* names found in native-transcoder/src"
    env = {e["name"]: e for e in container["env"]}
    for env_name in env:
        assert env_name in known or env_name == "RUST_LOG", f"{name}: {env_name} is not read by native-transcoder"
    assert env["STREAMGATE_MEDIA_DIR"]["value"] == "/media"
    assert "STREAMGATE_EVENTS_SECRET" in env and "valueFrom" in env["STREAMGATE_EVENTS_SECRET"]
    # The events go to the SpinApp's Service (spin-operator names it after the SpinApp, port 80).
    events = urlsplit(env["STREAMGATE_EVENTS_URL"]["value"])
    assert events.hostname == one(objects, "SpinApp")["metadata"]["name"] and events.path == "/internal/v1/events"
    # Passwords only in the environment, never in argv.
    assert not any("redis://" in a or "secret" in a.lower() for a in container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claim = next(v for v in spec["volumes"] if v["name"] == "media")["persistentVolumeClaim"]["claimName"]
    assert mounts["media"] == "/media" and claim == "media"
    if role == "work":
        assert "STREAMGATE_REDIS_URL" in env and "valueFrom" in env["STREAMGATE_REDIS_URL"]
        grace = int(env["STREAMGATE_SHUTDOWN_GRACE_SECS"]["value"])
        assert spec["terminationGracePeriodSeconds"] > grace


def test_media_volume_is_read_write_many(objects):
    assert one(objects, "PersistentVolumeClaim", "media")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_workers_scale_on_the_job_stream(objects, spinapp):
    scaled = one(objects, "ScaledObject", "worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]["name"]
    assert one(objects, "Deployment", target)["metadata"]["name"] == "worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    # The worker's stream and group names, wherever the worker takes them from (the job
    # contract in streamgate-core's pipeline module, or its own source).
    worker_src = "".join(p.read_text() for p in (ROOT / "native-transcoder" / "src").rglob("*.rs"))
    worker_src += (ROOT / "components" / "core" / "src" / "pipeline.rs").read_text()
    assert meta["stream"] == "streamgate:jobs" and f'"{meta["stream"]}"' in worker_src
    assert f'"{meta["consumerGroup"]}"' in worker_src, "not the worker's consumer group"
    assert meta["address"] == variables(spinapp)["redis_host"]["value"]
    # Exactly one of KEDA's three measures, and every value a string of digits.
    assert len({"pendingEntriesCount", "streamLength", "lagCount"} & set(meta)) == 1
    assert all(isinstance(v, str) for v in meta.values())
    auth = one(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"username", "password"}
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_references_resolve(objects, spinapp):
    services = {s["metadata"]["name"]: s for s in find(objects, "Service")}
    # spin-operator makes a Service named after the SpinApp, port 80.
    service_ports = {name: {p["port"] for p in s["spec"]["ports"]} for name, s in services.items()}
    service_ports[spinapp["metadata"]["name"]] = {80}
    for ingress in find(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["number"] in service_ports.get(backend["name"], set()), backend
    workloads = list(pod_specs(objects))
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matches = [(o, s) for o, s in workloads if selector.items() <= o["spec"]["template"]["metadata"]["labels"].items()]
        assert matches, f"Service {name} selects no pods"
        for port in service["spec"]["ports"]:
            names = {p.get("name") for _, s in matches for c in s["containers"] for p in c.get("ports", [])}
            assert port["targetPort"] in names, f"Service {name}: no container port {port['targetPort']}"
    config_maps = {c["metadata"]["name"] for c in find(objects, "ConfigMap")}
    claims = {c["metadata"]["name"] for c in find(objects, "PersistentVolumeClaim")}
    for o, spec in workloads:
        assert o["spec"]["selector"]["matchLabels"].items() <= o["spec"]["template"]["metadata"]["labels"].items()
        templates = {t["metadata"]["name"] for t in o["spec"].get("volumeClaimTemplates", [])}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, volume
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
            if "secret" in volume:
                assert volume["secret"]["secretName"] == SECRET
        for container in spec["containers"]:
            volumes = {v["name"] for v in spec.get("volumes", [])} | templates
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{o['metadata']['name']}: mount {mount['name']} has no volume"


def test_network_policies_select_the_pods_that_need_the_stores(objects, spinapp):
    pods = {name: o["spec"]["template"]["metadata"]["labels"] for name, o in ((o["metadata"]["name"], o) for o, _ in pod_specs(objects))}
    pods[spinapp["metadata"]["name"]] = spinapp["spec"].get("podLabels", {})

    def selects(selector, labels):
        if not selector.get("matchLabels", {}).items() <= labels.items():
            return False
        for e in selector.get("matchExpressions", []):
            assert e["operator"] == "In", e
            if labels.get(e["key"]) not in e["values"]:
                return False
        return True

    def selected(selector):
        return {name for name, labels in pods.items() if selects(selector, labels)}

    policies = {p["metadata"]["name"]: p for p in find(objects, "NetworkPolicy")}
    for name, policy in policies.items():
        assert selected(policy["spec"]["podSelector"]), f"NetworkPolicy {name} selects no pods"
    allowed = {
        name: set().union(*(selected(peer["podSelector"]) for rule in p["spec"]["ingress"] for peer in rule["from"] if "podSelector" in peer))
        for name, p in policies.items()
    }
    # The origin appends the jobs an app on hosted Spin hands it (job_transport = "http").
    assert allowed["redis"] == {"streamgate", "worker", "origin"}, allowed["redis"]
    assert allowed["libsql"] == {"streamgate"}, allowed["libsql"]


def test_ingress_lets_uploads_through(objects):
    media = one(objects, "Ingress", "media")
    notes = media["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    size = notes["nginx.ingress.kubernetes.io/proxy-body-size"]
    origin = {e["name"]: e.get("value") for e in one(objects, "Deployment", "origin")["spec"]["template"]["spec"]["containers"][0]["env"]}
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    limit = int(size[:-1]) * units[size[-1].lower()] if size[-1].lower() in units else int(size)
    assert limit == 0 or limit >= int(origin["STREAMGATE_MAX_UPLOAD_BYTES"]), "the proxy would refuse a PATCH the origin takes"
    paths = {p["path"] for r in media["spec"]["rules"] for p in r["http"]["paths"]}
    assert {"/uploads", "/media"} <= paths


def ingress_route(objects, host: str, path: str):
    """The Ingress and path that serve `path` on `host`: Prefix paths match whole segments, and
    the longest match wins, across every Ingress object of the host (as ingress-nginx merges
    them). None if nothing routes it."""
    best = None
    for ingress in find(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for p in rule["http"]["paths"]:
                prefix = p["path"].rstrip("/")
                exact = p["pathType"] == "Exact"
                matches = path == p["path"] if exact else (path == prefix or path.startswith(prefix + "/"))
                if matches and (best is None or len(p["path"]) > len(best[1]["path"])):
                    best = (ingress, p)
    return best


def denies_everyone(ingress) -> bool:
    notes = ingress["metadata"].get("annotations", {})
    denied = {r.strip() for r in notes.get("nginx.ingress.kubernetes.io/denylist-source-range", "").split(",")}
    return {"0.0.0.0/0", "::/0"} <= denied


def test_the_public_edge_does_not_expose_internal_routes(objects):
    # The native side's events (and anything else under /internal/) reach the app through its
    # in-cluster Service alone; the public Ingress refuses them for every client address.
    hosts = {r["host"] for i in find(objects, "Ingress") for r in i["spec"]["rules"]}
    for host in hosts:
        for path in ["/internal", "/internal/", "/internal/v1/events", "/internal/anything/else"]:
            route = ingress_route(objects, host, path)
            assert route is None or denies_everyone(route[0]), f"{host}{path} is routed by Ingress {route[0]['metadata']['name']}"
        # The public API is still routed, and not denied.
        for path in ["/api/v1/videos", "/health", "/stream/x/master.m3u8", "/"]:
            route = ingress_route(objects, host, path)
            assert route and not denies_everyone(route[0]), f"{host}{path} is not served"
    for name in ["origin", "worker"]:
        env = {e["name"]: e.get("value") for c in one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
        url = urlsplit(env["STREAMGATE_EVENTS_URL"])
        assert url.hostname == "streamgate" and url.path == "/internal/v1/events", f"{name} must send events to the app's in-cluster Service"


# ---------------------------------------------------------------------------------------------
# the Secret recipe


def secret_refs(objects) -> dict[str, bool]:
    """Every key of the Secret the rendered objects read: key -> optional."""
    refs: dict[str, bool] = {}

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name") == SECRET:
                refs[ref["key"]] = refs.get(ref["key"], True) and bool(ref.get("optional"))
            vol = node.get("secret")
            if isinstance(vol, dict) and vol.get("secretName") == SECRET:
                for item in vol.get("items", []):
                    refs[item["key"]] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(objects)
    for auth in find(objects, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == SECRET
            refs[ref["key"]] = False
    return refs


def test_secret_recipe_makes_every_key_the_manifests_read(objects, secret, spinapp):
    refs = secret_refs(objects)
    missing = sorted(k for k, optional in refs.items() if not optional and k not in secret)
    assert not missing, f"make-secrets.sh does not make: {missing}"
    unused = sorted(set(secret) - set(refs) - {"redis-admin-password"})
    assert not unused, f"make-secrets.sh makes keys nothing reads: {unused}"
    for key in ("session-secret", "events-secret", "playback-secret"):
        assert len(secret[key]) >= 32 and secret[key] != secret["session-secret"] or key == "session-secret"
    redis_host = variables(spinapp)["redis_host"]["value"]
    for key, user, path in (("redis-app-url", "streamgate-app", ""), ("redis-worker-url", "streamgate-worker", ""), ("redis-kv-url", "streamgate-kv", "/1")):
        url = urlsplit(secret[key])
        assert url.scheme == "redis" and url.username == user and url.password
        assert f"{url.hostname}:{url.port}" == redis_host, f"{key} does not name redis_host {redis_host}"
        assert url.path == path


def test_libsql_token_verifies_under_the_public_key(secret, tmp_path):
    header, claims, signature = secret["libsql-token"].split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(header))) == {"alg": "EdDSA", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(pad(claims)))["a"] == "rw"
    (tmp_path / "pub.pem").write_text(secret["libsql-jwt-public-key"])
    (tmp_path / "msg").write_text(f"{header}.{claims}")
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(pad(signature)))
    out = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "pub.pem", "-in", "msg", "-sigfile", "sig"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr


class Resp:
    """A minimal RESP2 client over a Unix socket, enough to try each user's rights."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "redis closed the connection"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise AssertionError(f"unexpected reply {line!r}")

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def close(self):
        self.sock.close()


def ok(reply):
    assert not isinstance(reply, RuntimeError), reply
    return reply


def refused(reply, word="NOPERM"):
    assert isinstance(reply, RuntimeError) and str(reply).startswith(word), reply


def test_redis_loads_the_config_and_acl_and_each_user_may_do_its_part(secret):
    server = shutil.which("redis-server")
    if not server:
        pytest.skip("redis-server is not installed (scripts/lib.sh installs it): the ACL file is not tried")
    with tempfile.TemporaryDirectory() as tmp:
        acl = Path(tmp, "users.acl")
        acl.write_text(secret["redis-users.acl"])
        sock = os.path.join(tmp, "redis.sock")
        # infra/k8s/redis.conf as it is, with only the paths and the listener moved here.
        proc = subprocess.Popen(
            [server, str(K8S / "redis.conf"), "--port", "0", "--unixsocket", sock, "--dir", tmp,
             "--aclfile", str(acl), "--daemonize", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock):
                if proc.poll() is not None:
                    pytest.fail(f"redis-server refused infra/k8s/redis.conf or the ACL file:\n{proc.stdout.read()}")
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

            def login(key_or_user, password=None):
                c = Resp(sock)
                if password is None:
                    url = urlsplit(secret[key_or_user])
                    ok(c("AUTH", url.username, url.password))
                    if url.path.strip("/"):
                        ok(c("SELECT", url.path.strip("/")))
                else:
                    ok(c("AUTH", key_or_user, password))
                return c

            anonymous = Resp(sock)
            refused(anonymous("PING"), "NOAUTH")
            anonymous.close()

            app = login("redis-app-url")
            ok(app("XADD", "streamgate:jobs", "*", "action", "transcode", "video_id", "v1"))
            refused(app("XRANGE", "streamgate:jobs", "-", "+"))
            refused(app("DEL", "streamgate:jobs"))

            worker = login("redis-worker-url")
            ok(worker("XGROUP", "CREATE", "streamgate:jobs", "transcoders", "0", "MKSTREAM"))
            refused(worker("XADD", "streamgate:jobs", "*", "a", "b"))

            metrics = login(secret["redis-metrics-username"], secret["redis-metrics-password"])
            groups = ok(metrics("XINFO", "GROUPS", "streamgate:jobs"))
            group = dict(zip(groups[0][::2], groups[0][1::2]))
            assert group["name"] == "transcoders" and group["lag"] == 1
            ok(metrics("XPENDING", "streamgate:jobs", "transcoders"))
            ok(metrics("XLEN", "streamgate:jobs"))
            refused(metrics("XADD", "streamgate:jobs", "*", "a", "b"))
            refused(metrics("GET", "x"))

            kv = login("redis-kv-url")  # database 1, as Spin's key-value store uses it
            ok(kv("SET", "k", "v"))
            assert ok(kv("GET", "k")) == "v"
            assert ok(kv("INCRBY", "n", 2)) == 2
            assert ok(kv("MGET", "k", "n")) == ["v", "2"]
            assert sorted(ok(kv("KEYS", "*"))) == ["k", "n"]
            ok(kv("WATCH", "k"))
            ok(kv("MULTI"))
            kv("SET", "k", "w")
            assert ok(kv("EXEC")) == ["OK"]
            assert ok(kv("EXISTS", "k")) == 1
            ok(kv("DEL", "k"))
            refused(kv("FLUSHALL"))
            refused(kv("CONFIG", "GET", "dir"))

            admin = login("streamgate-admin", secret["redis-admin-password"])
            assert ok(admin("CONFIG", "GET", "maxmemory-policy"))[1] == "noeviction"
            assert ok(admin("CONFIG", "GET", "appendonly"))[1] == "yes"
            for c in (app, worker, metrics, kv, admin):
                c.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# the native-transcoder image


def test_dockerfile_builds_the_binary_on_debian_with_ffmpeg():
    text = (K8S / "native-transcoder.Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) == 2 and stages[-1].startswith("debian:"), stages
    assert re.search(r"apt-get install[^\n]*\bffmpeg\b", text)
    cargo = tomllib.loads((ROOT / "native-transcoder" / "Cargo.toml").read_text())
    binary = cargo["bin"][0]["name"]
    assert f"-p {cargo['package']['name']}" in text and f"target/release/{binary}" in text
    assert re.search(r"^USER\s+\d+", text, re.M), "runs as root"
    entry = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])", text, re.M).group(1))
    assert entry[-1].endswith(f"/{binary}")
    ignore = (K8S / "native-transcoder.Dockerfile.dockerignore").read_text().split()
    assert "target/" in ignore, "the build context would carry target/"
