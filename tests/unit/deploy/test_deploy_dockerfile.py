"""deploy/Dockerfile: one multi-stage, non-root image whose health check asks /health.

No Docker engine here: the file's instructions are read, and its health-check command is run
against real HTTP servers."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
from deploy_support import DEPLOY, PROPOSED, ROOT, settings_env_names

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _one(word: str) -> str:
    found = [rest for w, rest in _instructions() if w == word]
    assert len(found) == 1, (word, found)
    return found[0]


def test_multi_stage_python_311_without_dev_extras():
    stages = [rest for w, rest in _instructions() if w == "FROM"]
    assert len(stages) == 2
    assert _one("ARG") == "PYTHON_IMAGE=python:3.11-slim-bookworm"
    runs = " ".join(rest for w, rest in _instructions() if w == "RUN")
    assert "pip install -c constraints.txt ." in runs
    assert "[dev]" not in runs and ".[" not in runs
    assert "--from=build /opt/rcm /opt/rcm" in [r for w, r in _instructions() if w == "COPY"]


def test_runs_as_a_non_root_user_with_rcm_serve_as_entrypoint():
    assert _one("USER") == "10001:10001"
    assert json.loads(_one("ENTRYPOINT")) == ["rcm", "serve"]
    assert not [w for w, _ in _instructions() if w == "CMD"]  # the service name is the argument


def test_image_environment_names_settings_rcm_reads():
    env = [rest for w, rest in _instructions() if w == "ENV"][-1]  # the runtime stage's
    names = set(re.findall(r"([A-Z_]+)=", env)) - {
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
    }
    assert names - settings_env_names() <= PROPOSED  # RCM_METRICS_HOST, until shared/ reads it


def _healthcheck_command() -> list[str]:
    rest = _one("HEALTHCHECK")
    return json.loads(rest[rest.index("CMD") + 3 :].strip())


def _answer_once(status: int) -> tuple[int, list[bytes], threading.Thread]:
    """A one-request HTTP server answering ``status``; the request lines it got are collected."""
    server = socket.create_server(("127.0.0.1", 0))
    requested: list[bytes] = []

    def serve():
        with server:
            conn, _ = server.accept()
            with conn:
                requested.append(conn.recv(4096).split(b"\r\n")[0])
                conn.sendall(f"HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], requested, thread


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_asks_health_on_the_http_port(status, healthy):
    port, requested, thread = _answer_once(status)
    command = _healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "RCM_HTTP_PORT": str(port)}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
    )
    thread.join(5)
    assert requested == [b"GET /health HTTP/1.1"]
    assert (result.returncode == 0) is healthy, result.stderr


def test_healthcheck_fails_when_nothing_listens():
    command = _healthcheck_command()
    env = {**os.environ, "RCM_HTTP_PORT": "1"}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0


def _unpackaged_files() -> list[str]:
    """Files of the packages the image installs (`pip install .`, not editable) that the wheel
    leaves out: setuptools keeps a non-Python file only when its name matches package-data
    (every folder under shared/, services/ and rcm/ is a package, namespace or not)."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["*"]
    missing = []
    for top in ("shared", "services", "rcm"):
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            if not any(fnmatch.fnmatch(path.name, p) for p in patterns):
                missing.append(str(path.relative_to(ROOT)))
    return missing


def test_the_image_gets_every_data_file_of_the_packages():
    assert _unpackaged_files() == []
