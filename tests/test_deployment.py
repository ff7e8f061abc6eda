"""The deployment files: what can be checked without a container engine."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess

import pytest
import yaml

from index.settings import PROJECT_ROOT

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
DOCS = (PROJECT_ROOT / "docs" / "DEPLOYMENT.md").read_text(encoding="utf-8")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_every_path_the_dockerfile_copies_exists() -> None:
    copies = [args.split()[:-1] for op, args in dockerfile_instructions() if op == "COPY"]
    assert copies
    for sources in copies:
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies {source}, which is missing"
    # What the wheel needs to build: its pyproject names these folders as packages.
    copied = {s.rstrip("/") for sources in copies for s in sources}
    assert {"citebot", "bot", "index", "prompts", "config", "pyproject.toml"} <= copied


def test_the_image_runs_as_a_user_with_a_health_check_and_a_data_volume() -> None:
    ops = dict(dockerfile_instructions())  # the last of each kind
    assert ops["USER"] != "root"
    assert "/healthz" in ops["HEALTHCHECK"]
    assert "/data" in ops["VOLUME"] and "CITEBOT_HOME=/data" in ops["ENV"]
    # CPU torch goes in before citebot, or pip resolves a CUDA build for it.
    runs = [a for op, a in dockerfile_instructions() if op == "RUN"]
    torch_step = next(i for i, a in enumerate(runs) if "TORCH_SPEC" in a)
    citebot_step = next(i for i, a in enumerate(runs) if re.search(r"pip install .*\s\.(\s|$)", a))
    assert torch_step < citebot_step and "torch==" in ops["ARG"] + str(dockerfile_instructions())


def test_compose_has_the_bot_and_a_chroma_server_as_documented() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"bot", "chroma"}
    assert services["bot"]["environment"]["CITEBOT_CHROMA_URL"] == "http://chroma:8000"
    assert "3000:3000" in services["bot"]["ports"]
    assert "127.0.0.1:8000:8000" in services["chroma"]["ports"]
    assert set(compose["volumes"]) == {"chroma-data", "citebot-data"}
    assert "citebot-data:/data" in services["bot"]["volumes"]
    for name in ("compose.yaml", "chroma-data", "citebot-data", "3000", "8000", "/healthz"):
        assert name in DOCS, f"docs/DEPLOYMENT.md should mention {name}"
    assert "not built here" in DOCS.lower()  # says the image was not built here


def test_the_systemd_unit_serves_citebot() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read(PROJECT_ROOT / "deploy" / "citebot.service")
    assert re.search(r"/bin/citebot serve\b", unit["Service"]["ExecStart"])
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "deploy/citebot.service" in DOCS


def rendered_k8s() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(PROJECT_ROOT / "deploy" / "k8s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_kustomize_renders_every_container_with_probes_and_limits() -> None:
    objects = rendered_k8s()
    workloads = {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOADS}
    assert {(o["kind"], name) for name, o in workloads.items()} == {
        ("Deployment", "citebot"),
        ("StatefulSet", "chroma"),
    }
    for workload in workloads.values():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            name = container["name"]
            assert container["readinessProbe"] and container["livenessProbe"], name
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, name
    [bot] = workloads["citebot"]["spec"]["template"]["spec"]["containers"]
    assert bot["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert bot["livenessProbe"]["httpGet"]["path"] == "/livez"
    [secret] = [o for o in objects if o["kind"] == "Secret"]
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in bot["envFrom"]
    chroma = workloads["chroma"]["spec"]
    [volume] = chroma["volumeClaimTemplates"]
    mounts = chroma["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": volume["metadata"]["name"], "mountPath": "/data"} in mounts
