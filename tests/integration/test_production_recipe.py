"""The production recipe in docs/production/: the Dockerfile, compose.yaml and the systemd unit."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "docs" / "production"
DOCKERFILE = RECIPE / "Dockerfile"
COMPOSE = RECIPE / "compose.yaml"
UNIT = RECIPE / "ledger-reconcile@.service"

#: Names whose value is a secret: a recipe file may name them, never give them a value.
SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET)\w*$")
#: What a provider key looks like (OpenAI `sk-...`, Anthropic `sk-ant-...`).
KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def install_line() -> str:
    """The Dockerfile's `pip install` argument, e.g. `.[postgres,ui,metrics]`."""
    found = re.search(r"pip install '([^']+)'", DOCKERFILE.read_text())
    assert found, "the Dockerfile has no `pip install '...'` line"
    return found.group(1)


def install_extras() -> list[str]:
    found = re.fullmatch(r"\.\[([\w,-]+)\]", install_line())
    assert found, f"not an install of the build context with extras: {install_line()}"
    return found.group(1).split(",")


def copied_paths() -> list[str]:
    """Every source the Dockerfile COPYs from the build context (the repository root)."""
    paths: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            paths.extend(line.split()[1:-1])
    return paths


def check_values_are_not_secrets(assignments: dict[str, object], where: str) -> None:
    for name, value in assignments.items():
        if SECRET_NAME.search(name) and value not in (None, ""):
            assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), (
                f"{where}: {name} has a value instead of coming from the environment"
            )


def test_no_recipe_file_contains_a_key() -> None:
    """No recipe file holds a key, a password or a token: each comes from the environment."""
    for path in (DOCKERFILE, COMPOSE, UNIT):
        text = path.read_text()
        assert not KEY_SHAPE.search(text), f"{path.name} contains what looks like an API key"
        for name, value in re.findall(r"^\s*(\w+)\s*[:=][ \t]*(.*)$", text, re.MULTILINE):
            check_values_are_not_secrets({name: value.strip() or None}, path.name)
    # The database URL carries the password only as an interpolation.
    assert re.search(r"ledger:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres", COMPOSE.read_text())


def test_the_secret_check_catches_a_written_key() -> None:
    """A key written into a recipe file would be caught (the check above can fail)."""
    with pytest.raises(AssertionError):
        check_values_are_not_secrets({"OPENAI_API_KEY": "hunter2"}, "compose.yaml")
    assert KEY_SHAPE.search("OPENAI_API_KEY: sk-proj-abcdefgh1234")


def test_compose_names_the_services() -> None:
    """compose.yaml runs PostgreSQL, two reconcilers and the dashboard from the repository root."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: compose.yaml not parsed")
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "reconciler-1", "reconciler-2", "ui"} <= set(services)
    for name in ("reconciler-1", "reconciler-2"):
        command = services[name]["command"]
        assert command[:2] == ["reconcile", "--loop"] and "--metrics-port" in command
        assert services[name]["stop_signal"] == "SIGTERM"
    assert services["ui"]["command"][:3] == ["ui", "--host", "0.0.0.0"]
    for name, service in services.items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict)
        check_values_are_not_secrets(environment, f"compose.yaml service {name}")
        if name != "postgres":
            assert service["build"] == {
                "context": "../..",
                "dockerfile": "docs/production/Dockerfile",
            }


def test_dockerfile_installs_extras_that_exist() -> None:
    """The Dockerfile installs the postgres, ui and metrics extras, each declared by the package."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert install_extras() == ["postgres", "ui", "metrics"]
    assert set(install_extras()) <= set(declared)
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), "the image runs as root"
    assert 'CMD ["ledger", "doctor", "--json"]' in text
    assert 'ENTRYPOINT ["ledger"]' in text


def test_systemd_unit_restarts_and_stops_with_sigterm() -> None:
    """The unit restarts the loop, reads its keys from a file and stops it with SIGTERM."""
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text().splitlines() if re.match(r"^\w+=", line)
    )
    assert settings["Restart"] == "always"
    assert settings["KillSignal"] == "SIGTERM"
    assert settings["EnvironmentFile"].startswith("/etc/")
    assert " reconcile --loop " in settings["ExecStart"]


def doctor_env() -> dict[str, str]:
    """No keys, no config, no ledger from the environment: doctor sends nothing anywhere."""
    drop = ("OPENAI_", "ANTHROPIC_", "LEDGER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def assert_database_ok(stdout: str) -> None:
    report = json.loads(stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["database"]["ok"] is True, checks["database"]
    assert checks["schema"]["ok"] is True, checks["schema"]


@pytest.mark.timeout(300)
def test_image_install_step_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    """What the Dockerfile COPYs builds the package it installs, and that package, installed
    into a fresh virtualenv, gives a `ledger` whose doctor opens a database.

    Offline: the wheel is built with this environment's setuptools (no build isolation) and the
    dependencies come from this environment through a `.pth` file, so nothing is fetched. The
    extras the Dockerfile names are checked against pyproject.toml above; CI's package-check
    installs from the index."""
    # The build context as the image sees it: only the paths the Dockerfile copies.
    context = tmp_path / "src"
    context.mkdir()
    for name in copied_paths():
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    wheels = tmp_path / "wheels"
    offline = ["--no-deps", "--no-index", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "-w", str(wheels), install_line()],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = wheels.glob("llm_batch_ledger-*.whl")
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *offline, str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # After the venv's own site-packages, so the ledger found is the one just installed.
    (Path(site_packages) / "test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    found = subprocess.run(
        [str(python), "-c", "import ledger; print(ledger.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found.startswith(site_packages), found
    database = tmp_path / "ledger.db"
    doctor = subprocess.run(
        [str(target / "bin" / "ledger"), "--db", str(database), "doctor", "--json"],
        cwd=tmp_path,
        env=doctor_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # No provider key is set, so the provider checks fail (exit 1); the database ones pass.
    assert doctor.returncode == 1, doctor.stderr
    assert_database_ok(doctor.stdout)
    assert database.exists()


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no `docker` command on this machine: the image is not built"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"`docker info` failed (no Docker engine): {info.stderr.strip()[-200:]}"
    return None


@pytest.mark.timeout(1800)
def test_image_builds_and_doctor_runs_in_it() -> None:
    """Where Docker runs, the image builds from the repository root and `ledger doctor` passes
    its database checks inside it."""
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    tag = "llm-batch-ledger:recipe-test"
    built = subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(REPO)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    doctor = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", tag, "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 1, doctor.stderr
    assert_database_ok(doctor.stdout)
