"""The production deployment files, checked statically (no Docker engine runs here).

docker-compose.yml is parsed with PyYAML (merge keys resolved) and held to what the issue
asks: pinned images, one Dockerfile for the app services, health checks and restart policies,
valid dependencies, explicit topic partitions, ksqlDB applying ksql/ headlessly, secrets only
from .env. The Dockerfile and `tubewatch.healthcheck` (the probe the app services run) too.
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from tubewatch import healthcheck

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict] = COMPOSE["services"]
APP_SERVICES = ("api", "poller", "notifier", "changes")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)|(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


def one_shot(name: str) -> bool:
    """Services that run and exit: the topics init and the on-demand tools."""
    return str(SERVICES[name].get("restart")) == "no"


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_stack_has_the_issues_services():
    expected = {
        "broker",
        "topics",
        "schema-registry",
        "connect",
        "ksqldb-server",
        "ksqldb-cli",
        "postgres",
        "api",
        "poller",
        "notifier",
        "changes",
        "kafka-ui",
        "control-center",
    }
    assert expected <= set(SERVICES)
    # ksqlDB does the change detection by default; the Python engine is opt-in.
    assert "profiles" not in SERVICES["ksqldb-server"]
    assert SERVICES["changes"]["profiles"] == ["changes"]
    assert SERVICES["changes"]["command"] == ["changes"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_or_built(name):
    service = SERVICES[name]
    assert "image" in service or "build" in service, name
    if "build" in service:
        return
    image = service["image"]
    assert "${" not in image, f"{name}: the tag must be literal, not interpolated"
    repository, _, tag = image.rpartition(":")
    assert repository and "/" not in tag, f"{name}: {image} has no tag"
    assert tag != "latest" and not tag.endswith("-latest"), f"{name}: {image}"
    # a release, not a moving major line: 7.9.0, v1.2.0, 17.2-bookworm (PostgreSQL: major.minor)
    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-.][A-Za-z0-9.]+)?", tag), f"{name}: {image}"


def test_confluent_images_share_one_version():
    versions = {
        s["image"].rpartition(":")[2]
        for s in SERVICES.values()
        if s.get("image", "").startswith("confluentinc/")
    }
    assert versions == {"7.9.0"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_from_the_one_dockerfile(name):
    service = SERVICES[name]
    assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert service["image"] == SERVICES["api"]["image"]
    assert service["env_file"] == ".env"
    env = env_of(service)
    assert env["TUBEWATCH_KAFKA_BOOTSTRAP"] == "broker:29092"
    assert env["TUBEWATCH_DATABASE_URL"].startswith("postgresql+psycopg://tubewatch:${")
    assert "@postgres:5432/tubewatch" in env["TUBEWATCH_DATABASE_URL"]


def test_app_commands_are_the_contracts_processes():
    assert SERVICES["api"]["command"][:1] == ["api"]
    assert "0.0.0.0" in SERVICES["api"]["command"]
    assert SERVICES["poller"]["command"] == ["poller"]
    assert SERVICES["notifier"]["command"] == ["notifier"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_long_running_services_have_a_healthcheck_and_a_restart_policy(name):
    service = SERVICES[name]
    if one_shot(name):
        return
    assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name
    check = service.get("healthcheck")
    assert check and check.get("test") and not check.get("disable"), name
    assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for key in ("interval", "timeout", "retries"):
        assert key in check, f"{name}: healthcheck without {key}"


def test_one_shot_services_are_only_the_topics_init_and_tools():
    assert {n for n in SERVICES if one_shot(n)} == {"topics", "ksqldb-cli"}
    assert SERVICES["ksqldb-cli"]["profiles"] == ["tools"]


def test_specific_health_checks():
    assert SERVICES["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    api_check = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "tubewatch.healthcheck" in api_check and "/healthz" in api_check
    assert "kafka-broker-api-versions" in " ".join(SERVICES["broker"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_exist_and_use_valid_conditions(name):
    depends = SERVICES[name].get("depends_on") or {}
    assert isinstance(depends, dict), f"{name}: use the long form with conditions"
    for target, spec in depends.items():
        assert target in SERVICES, f"{name} depends on unknown {target}"
        assert target != name
        assert spec["condition"] in CONDITIONS
        if spec["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health"
        if spec["condition"] == "service_completed_successfully":
            assert one_shot(target)


def test_dependency_graph_is_acyclic_and_apps_wait_for_what_they_need():
    def deps(name: str) -> set[str]:
        return set(SERVICES[name].get("depends_on") or {})

    def closure(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"cycle: {' -> '.join((*seen, name))}"
        found = set()
        for dep in deps(name):
            found |= {dep} | closure(dep, (*seen, name))
        return found

    for name in SERVICES:
        closure(name)
    for name in APP_SERVICES:
        needs = closure(name) | {name}
        assert {"postgres", "broker", "topics", "api"} <= needs, name
        if name != "api":
            assert SERVICES[name]["depends_on"]["api"]["condition"] == "service_healthy"
    api = SERVICES["api"]["depends_on"]
    assert api["postgres"]["condition"] == "service_healthy"
    assert api["topics"]["condition"] == "service_completed_successfully"


def test_the_topics_init_creates_the_contract_topics_with_explicit_partitions():
    topics = SERVICES["topics"]
    assert topics["image"].startswith("confluentinc/cp-kafka:")
    script = "\n".join(topics["command"]) if isinstance(topics["command"], list) else ""
    assert "kafka-topics --bootstrap-server broker:29092 --create --if-not-exists" in script
    assert '--partitions "$$PARTITIONS"' in script
    assert env_of(topics)["PARTITIONS"] == "${TUBEWATCH_KAFKA_PARTITIONS:-6}"
    for topic in ("youtube_videos", "video_changes", "tubewatch_dlq"):
        assert re.search(rf"^\s*create {topic}\b", script, re.M), topic
    assert SERVICES["topics"]["depends_on"]["broker"]["condition"] == "service_healthy"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
def test_docker_compose_validates_the_file_and_requires_the_secrets(tmp_path):
    """`docker-compose config` checks the file against Compose's schema with no engine.
    (Debian's docker-compose 1.29 predates the top-level `name`, so that line is dropped.)"""
    text = "\n".join(line for line in COMPOSE_TEXT.splitlines() if not line.startswith("name:"))
    (tmp_path / "docker-compose.yml").write_text(text)
    (tmp_path / "ksql").mkdir()
    filled = {key: value or "x" for key, value in env_example().items()}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in filled.items()))
    command = ["docker-compose", "--profile", "changes", "--profile", "tools", "config"]
    ok = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    resolved = yaml.safe_load(ok.stdout)
    assert "changes" in resolved["services"]
    url = resolved["services"]["poller"]["environment"]["TUBEWATCH_DATABASE_URL"]
    assert url == "postgresql+psycopg://tubewatch:x@postgres:5432/tubewatch"

    filled["TUBEWATCH_SECRET_KEY"] = ""
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in filled.items()))
    missing = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0
    assert "set TUBEWATCH_SECRET_KEY in .env" in missing.stderr


def test_the_topics_script_runs_with_the_arguments_kafka_topics_expects(tmp_path):
    """Run the init script as the container would (compose turns $$ into $), with a stand-in
    kafka-topics that records its arguments: catches shell and escaping mistakes."""
    script = SERVICES["topics"]["command"][0].replace("$$", "$")
    fake = tmp_path / "kafka-topics"
    fake.write_text('#!/bin/sh\necho "$@" >> "$CALLS"\n')
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "CALLS": str(calls),
        "PARTITIONS": "12",
        "RETENTION_DAYS": "7",
    }
    subprocess.run([*SERVICES["topics"]["entrypoint"], script], env=env, check=True)
    lines = calls.read_text().splitlines()
    creates = [line.split() for line in lines if "--create" in line]
    assert [c[c.index("--topic") + 1] for c in creates] == [
        "youtube_videos",
        "video_changes",
        "tubewatch_dlq",
    ]
    for create in creates:
        assert create[create.index("--partitions") + 1] == "12"
        assert "--if-not-exists" in create
    assert "retention.ms=604800000" in creates[0]  # 7 days
    assert "retention.ms=2592000000" in creates[2]  # the DLQ keeps 30 days


def test_ksqldb_runs_the_statements_file_headlessly():
    server = SERVICES["ksqldb-server"]
    env = env_of(server)
    assert "./ksql:/ksql:ro" in server["volumes"]
    assert env["KSQL_KSQL_QUERIES_FILE"] == "/ksql/statements.sql"
    assert (ROOT / "ksql" / "statements.sql").exists()
    assert env["KSQL_KSQL_STREAMS_CACHE_MAX_BYTES_BUFFERING"] == "0"
    assert env["KSQL_KSQL_STREAMS_AUTO_OFFSET_RESET"] == "earliest"
    assert env["KSQL_BOOTSTRAP_SERVERS"] == "broker:29092"
    # youtube_videos must exist before the statements run
    assert server["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert "./ksql:/ksql:ro" in SERVICES["ksqldb-cli"]["volumes"]


def test_the_broker_runs_in_kraft_mode_with_a_named_volume():
    env = env_of(SERVICES["broker"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "CLUSTER_ID" in env


def test_volumes_are_named_and_declared():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert volume.endswith(":ro"), f"{name}: bind mounts are read-only"
                continue
            assert source in declared, f"{name}: {source} is not a declared named volume"
            used.add(source)
    assert used == declared
    assert {"broker-data", "postgres-data"} <= used


def test_published_ports_bind_to_loopback():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all hosts"


# -- secrets and .env.example ------------------------------------------------------------------


def interpolated_variables(text: str) -> set[str]:
    return {a or b for a, b in INTERPOLATION.findall(text)}


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_env_example_names_every_interpolated_variable():
    used = interpolated_variables(COMPOSE_TEXT)
    assert {"POSTGRES_PASSWORD", "TUBEWATCH_SECRET_KEY", "TUBEWATCH_YOUTUBE_API_KEY"} <= used
    assert used <= set(env_example()), used - set(env_example())


def test_env_example_leaves_the_secrets_empty_and_env_is_ignored():
    example = env_example()
    for key in ("POSTGRES_PASSWORD", "TUBEWATCH_SECRET_KEY", "TUBEWATCH_YOUTUBE_API_KEY"):
        assert example[key] == "", key
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in gitignore
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in dockerignore


SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|WEBHOOK", re.I)


def test_no_secret_value_is_written_in_the_compose_file():
    for name, service in SERVICES.items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", value), f"{name}: {key}"
            if "://" in value and "@" in value:  # credentials inside a URL
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                password = userinfo.partition(":")[2]
                assert not password or password.startswith("${"), f"{name}: {key}"
    required = re.findall(r"\$\{([A-Z_]+):\?", COMPOSE_TEXT)
    assert {"POSTGRES_PASSWORD", "TUBEWATCH_SECRET_KEY"} <= set(required)


def test_interpolation_regex_skips_escaped_dollars():
    assert interpolated_variables("a ${X:-1} $$Y $Z $${W}") == {"X", "Z"}


# -- Dockerfile --------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    rows = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            rows.append((op.upper(), rest.strip()))
    return rows


def test_dockerfile_base_image_is_pinned_python_311_slim():
    froms = [rest for op, rest in dockerfile_instructions() if op == "FROM"]
    assert froms and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", f) for f in froms)


def test_dockerfile_installs_the_project_with_postgres_and_runs_as_non_root():
    rows = dockerfile_instructions()
    runs = " ".join(rest for op, rest in rows if op == "RUN")
    assert 'pip install ".[postgres]"' in runs
    users = [rest for op, rest in rows if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert rows.index(("USER", users[-1])) > max(i for i, (op, _) in enumerate(rows) if op == "RUN")
    assert ("ENTRYPOINT", '["tubewatch"]') in rows
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^postgres = \["psycopg\[binary\]', pyproject, re.M)


def test_dockerfile_copies_what_the_package_needs_and_dockerignore_keeps_it():
    copies = [rest for op, rest in dockerfile_instructions() if op == "COPY"]
    copied = {part for rest in copies for part in rest.split()[:-1]}
    assert {"pyproject.toml", "README.md", "tubewatch", "services"} <= copied
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert not copied & ignored


# -- the health probe the app containers run ---------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path.startswith("/healthz") else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_passes_on_2xx_and_open_ports(http_server):
    assert healthcheck.main(["--http", f"http://{http_server}/healthz", "--tcp", http_server]) == 0


def test_healthcheck_fails_on_5xx_closed_ports_and_hides_query_strings(http_server, capsys):
    port = closed_port()
    status = healthcheck.main(
        [
            "--http",
            f"http://{http_server}/readyz?key=s3cr3t",
            "--tcp",
            f"127.0.0.1:{port}",
            "--timeout",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "HTTP 503" in err and f"127.0.0.1:{port}" in err
    assert "s3cr3t" not in err


def test_healthcheck_rejects_bad_arguments(capsys):
    assert healthcheck.main(["--tcp", "no-port"]) == 1
    assert healthcheck.main(["--http", "file:///etc/passwd"]) == 1
    with pytest.raises(SystemExit):
        healthcheck.main([])
