"""The deployment files: what can be checked without a container engine."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from index.settings import PROJECT_ROOT

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
INSTALL_TORCH = PROJECT_ROOT / "deploy" / "install-torch"
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
    torch_step = next(i for i, a in enumerate(runs) if "install-torch" in a)
    citebot_step = next(
        i for i, a in enumerate(runs) if re.search(r"pip install .*\s\"?\.(\[\w+\]\")?(\s|$)", a)
    )
    assert torch_step < citebot_step
    args = [a for op, a in dockerfile_instructions() if op == "ARG"]
    assert 'CITEBOT_TORCH_INDEX="https://download.pytorch.org/whl/cpu"' in args


def fake_pip(tmp_path: Path, fails_first: bool) -> tuple[Path, Path]:
    """A `pip` that records each call's arguments; the first call fails if `fails_first`."""
    calls = tmp_path / "calls"
    pip = tmp_path / "pip"
    pip.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'[ "{int(fails_first)}" = 1 ] && [ "$(wc -l < {calls})" -eq 1 ] && exit 1\n'
        "exit 0\n"
    )
    pip.chmod(0o755)
    return pip, calls


def install_torch(pip: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CITEBOT_TORCH")}
    return subprocess.run(
        [str(INSTALL_TORCH), str(pip), "--no-cache-dir"],
        capture_output=True, text=True, timeout=60, env={**environ, **env},
    )  # fmt: skip


def test_torch_comes_from_the_cpu_index_with_a_short_timeout(tmp_path: Path) -> None:
    pip, calls = fake_pip(tmp_path, fails_first=False)
    done = install_torch(pip)
    assert done.returncode == 0, done.stderr
    [call] = calls.read_text().splitlines()
    assert call == (
        "install --timeout 10 --retries 0 --index-url https://download.pytorch.org/whl/cpu "
        "--no-cache-dir torch==2.13.0"
    )
    assert "deploy/install-torch" in (PROJECT_ROOT / "run").read_text(encoding="utf-8")


def test_an_unreachable_torch_index_falls_back_to_pips_own(tmp_path: Path) -> None:
    pip, calls = fake_pip(tmp_path, fails_first=True)
    mirror = "http://mirror.invalid/cpu"
    done = install_torch(pip, CITEBOT_TORCH_INDEX=mirror, CITEBOT_TORCH="torch")
    assert done.returncode == 0, done.stderr
    first, second = calls.read_text().splitlines()
    assert "--index-url http://mirror.invalid/cpu" in first
    assert second == "install --no-cache-dir torch"
    [note] = done.stderr.splitlines()
    assert "http://mirror.invalid/cpu" in note and "CITEBOT_TORCH_INDEX" in note


def test_compose_has_the_bot_a_chroma_server_and_a_cli_as_documented() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"bot", "chroma", "cli"}
    for name in ("bot", "cli"):
        assert services[name]["environment"]["CITEBOT_CHROMA_URL"] == "http://chroma:8000"
        assert services[name]["depends_on"] == {"chroma": {"condition": "service_healthy"}}
        assert "citebot-data:/data" in services[name]["volumes"]
    assert "test" in services["chroma"]["healthcheck"]
    assert "3000:3000" in services["bot"]["ports"]
    assert "127.0.0.1:8000:8000" in services["chroma"]["ports"]
    assert set(compose["volumes"]) == {"chroma-data", "citebot-data"}
    # Index commands run without Slack tokens: nothing in the file insists on one.
    assert ":?" not in (PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert not any(k.startswith("SLACK_") for k in services["cli"]["environment"])
    assert services["cli"]["profiles"] == ["cli"]
    for name in ("compose.yaml", "chroma-data", "citebot-data", "3000", "8000", "/healthz",
                 "mkdir -p articles", "docker compose run --rm cli index rebuild"):  # fmt: skip
        assert name in DOCS, f"docs/DEPLOYMENT.md should mention {name}"
    assert "not built here" in DOCS.lower()  # says the image was not built here


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    lines = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"  # everything out, then what the image needs back in
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copies = [args.split()[:-1] for op, args in dockerfile_instructions() if op == "COPY"]
    assert {source.rstrip("/") for sources in copies for source in sources} == allowed


def compose_plugin() -> str | None:
    """Why `docker compose` cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    return None if done.returncode == 0 else "docker is installed without its compose plugin"


def test_docker_compose_accepts_the_file_without_slack_tokens() -> None:
    if reason := compose_plugin():
        pytest.skip(f"{reason}: docker compose config not run")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    for profile in ([], ["--profile", "cli"]):
        done = subprocess.run(
            ["docker", "compose", "-f", str(PROJECT_ROOT / "compose.yaml"), *profile,
             "config", "--quiet"],
            capture_output=True, text=True, timeout=120, env=environ,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit was not verified")
    # verify checks that ExecStart's program exists: a stand-in for /opt/citebot's.
    citebot = tmp_path / "citebot"
    citebot.write_text("#!/bin/sh\n")
    citebot.chmod(0o755)
    unit = (PROJECT_ROOT / "deploy" / "citebot.service").read_text(encoding="utf-8")
    assert "/opt/citebot/bin/citebot serve" in unit
    (tmp_path / "citebot.service").write_text(
        unit.replace("/opt/citebot/bin/citebot", str(citebot))
    )
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "citebot.service")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    complaints = [line for line in done.stderr.splitlines() if "citebot.service" in line]
    assert done.returncode == 0 and not complaints, done.stderr


def test_the_systemd_unit_serves_citebot() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read(PROJECT_ROOT / "deploy" / "citebot.service")
    assert re.search(r"/bin/citebot serve\b", unit["Service"]["ExecStart"])
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Service"]["User"] == "citebot"
    text = (PROJECT_ROOT / "deploy" / "citebot.service").read_text(encoding="utf-8")
    assert "CITEBOT_CONFIG=/etc/citebot/citebot.toml" in text
    for step in ("deploy/citebot.service", "useradd --system", "/etc/citebot/citebot.toml",
                 "systemd-run", "--uid=citebot", "index rebuild", "chown -R citebot"):  # fmt: skip
        assert step in DOCS, f"docs/DEPLOYMENT.md's install steps should have {step}"


def rendered_k8s(folder: Path = PROJECT_ROOT / "deploy" / "k8s") -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_scale_out_overlay_runs_pods_that_share_their_state_in_a_database() -> None:
    objects = rendered_k8s(PROJECT_ROOT / "deploy" / "k8s-scale-out")
    [bot] = [o for o in objects if o["kind"] == "Deployment"]
    assert bot["spec"]["replicas"] > 1 and bot["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = bot["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "data", "emptyDir": {}}]  # caches only
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    [container] = pod["containers"]
    shared = [secrets[ref["secretRef"]["name"]] for ref in container["envFrom"]]
    stores = {k: v for s in shared for k, v in s["stringData"].items() if k.endswith("_STORE")}
    assert set(stores) == {"CITEBOT_STATE_STORE", "CITEBOT_INSTALLATION_STORE"}
    assert all(url.startswith("postgresql+psycopg://") for url in stores.values())
    # The image has the driver those URLs name.
    assert any("[postgres]" in args for op, args in dockerfile_instructions() if op == "RUN")


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
