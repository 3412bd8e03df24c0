"""Settings, secrets and the CLI surface of the shared package."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tubewatch.cli import COMMANDS, build_parser
from tubewatch.secrets import TargetCipher, redact_query_secrets, redact_target, secret_key_from
from tubewatch.settings import Settings


def test_settings_read_tubewatch_variables(monkeypatch):
    monkeypatch.setenv("TUBEWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9999")
    monkeypatch.setenv("TUBEWATCH_YOUTUBE_API_KEY", "AIzaSecret")
    monkeypatch.setenv("TUBEWATCH_QUOTA_UNITS_PER_DAY", "500")
    monkeypatch.setenv("TUBEWATCH_ALLOW_PRIVATE_TARGETS", "true")
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9999"
    assert settings.quota_units_per_day == 500
    assert settings.allow_private_targets is True
    assert "AIzaSecret" not in repr(settings)
    assert settings.youtube_api_key.get_secret_value() == "AIzaSecret"


# CONTRACT.md, "Configuration": variable -> default (None: unset).
CONTRACT_DEFAULTS = {
    "DATABASE_URL": "sqlite:///./tubewatch.db",
    "KAFKA_BOOTSTRAP": None,
    "YOUTUBE_API_KEY": None,
    "YOUTUBE_API_URL": "https://www.googleapis.com/youtube/v3",
    "POLL_INTERVAL_S": 60,
    "QUOTA_UNITS_PER_DAY": 10000,
    "SECRET_KEY": None,
    "ALLOW_PRIVATE_TARGETS": False,
}


def _clear_tubewatch_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TUBEWATCH_"):
            monkeypatch.delenv(name)


def test_settings_defaults_match_contract(monkeypatch):
    _clear_tubewatch_env(monkeypatch)
    settings = Settings()
    for name, default in CONTRACT_DEFAULTS.items():
        assert getattr(settings, name.lower()) == default, name


def test_empty_variables_count_as_unset(monkeypatch):
    """`TUBEWATCH_SECRET_KEY=` in an env file must not encrypt targets with an empty key."""
    _clear_tubewatch_env(monkeypatch)
    for name in CONTRACT_DEFAULTS:
        monkeypatch.setenv(f"TUBEWATCH_{name}", "")
    settings = Settings()
    for name, default in CONTRACT_DEFAULTS.items():
        assert getattr(settings, name.lower()) == default, name


def _readme_configuration_table() -> dict[str, str]:
    """The README's configuration table: variable -> default cell."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                table[name] = cells[1]
    return table


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgres:/nowhere"),
        ("DATABASE_URL", "sqlite:////no/such/folder/tubewatch.db"),
        ("YOUTUBE_API_URL", "www.googleapis.com/youtube/v3"),
        ("YOUTUBE_API_URL", "ftp://example.org/youtube/v3"),
        ("POLL_INTERVAL_S", "0"),
        ("QUOTA_UNITS_PER_DAY", "lots"),
        ("ALLOW_PRIVATE_TARGETS", "maybe"),
    ],
)
def test_invalid_contract_variables_are_refused(monkeypatch, name, value):
    _clear_tubewatch_env(monkeypatch)
    monkeypatch.setenv(f"TUBEWATCH_{name}", value)
    with pytest.raises(ValueError, match=name.lower()):
        Settings()


def test_sqlite_urls_in_existing_folders_and_in_memory_are_fine(monkeypatch, tmp_path):
    _clear_tubewatch_env(monkeypatch)
    for url in (f"sqlite:///{tmp_path / 'a.db'}", "sqlite://", "sqlite:///:memory:"):
        monkeypatch.setenv("TUBEWATCH_DATABASE_URL", url)
        assert Settings().database_url == url


def test_youtube_api_url_accepts_the_simulator_and_drops_a_trailing_slash(monkeypatch):
    _clear_tubewatch_env(monkeypatch)
    monkeypatch.setenv("TUBEWATCH_YOUTUBE_API_URL", "http://127.0.0.1:8090/youtube/v3/")
    assert Settings().youtube_api_url == "http://127.0.0.1:8090/youtube/v3"


def test_readme_documents_every_setting_with_the_contract_defaults():
    table = _readme_configuration_table()
    assert set(table) >= {name.upper() for name in Settings.model_fields}, (
        "settings missing from the README's configuration table"
    )
    for name, default in CONTRACT_DEFAULTS.items():
        shown = "unset" if default is None else str(default).lower()
        assert table[name].strip("`").lower().startswith(shown), (name, table[name])


def test_invalid_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TUBEWATCH_POLL_INTERVAL_S", "-5")
    with pytest.raises(ValueError, match="poll_interval_s"):
        Settings()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345", "tgram://…"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://…"),
        ("json://hooks.example.org/path/secret", "json://hooks.example.org/…"),
        ("mailto://user:password@mail.example.com", "mailto://mail.example.com/…"),
        ("not a url", "***"),
    ],
)
def test_redact_target_keeps_scheme_and_host_only(url, shown):
    assert redact_target(url) == shown


def test_redact_query_secrets():
    text = "GET https://x/youtube/v3/videos?part=statistics&key=AIzaSyA-secret&id=1 failed"
    assert "AIzaSyA-secret" not in redact_query_secrets(text)
    assert "key=***" in redact_query_secrets(text)


def test_target_cipher_round_trip_and_wrong_key():
    cipher = TargetCipher("one")
    token = cipher.encrypt("tgram://bot/chat")
    assert "bot" not in token
    assert cipher.decrypt(token) == "tgram://bot/chat"
    with pytest.raises(ValueError, match="SECRET_KEY"):
        TargetCipher("two").decrypt(token)


def test_secret_key_generated_once_into_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key=None)
    first = secret_key_from(settings)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert secret_key_from(settings) == first


def run_tubewatch(*args: str, cwd=None, **variables: str) -> subprocess.CompletedProcess:
    """``tubewatch ARGS`` as a process, with no TUBEWATCH_ variable but ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWATCH_")}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-m", "tubewatch.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_cli_help_lists_every_contract_command():
    result = run_tubewatch("--help")
    assert result.returncode == 0, result.stderr
    for command in ("api", "poller", "changes", "notifier", "run", "demo", "youtube-sim", "keys"):
        assert command in result.stdout
    assert set(COMMANDS) == {
        "api",
        "poller",
        "changes",
        "notifier",
        "run",
        "demo",
        "youtube-sim",
        "keys",
    }


def test_cli_parses_contract_flags():
    parser = build_parser()
    assert parser.parse_args(["poller", "--once"]).once is True
    assert parser.parse_args(["poller"]).once is False
    for command, port in (("api", 8000), ("run", 8000), ("demo", 8000), ("youtube-sim", 8090)):
        args = parser.parse_args([command])
        assert (args.host, args.port) == ("127.0.0.1", port), command
        args = parser.parse_args([command, "--host", "0.0.0.0", "--port", "18123"])
        assert (args.host, args.port) == ("0.0.0.0", 18123), command
    assert parser.parse_args(["keys", "create", "--name", "ann"]).name == "ann"
    with pytest.raises(SystemExit):
        parser.parse_args(["keys", "create"])  # --name is required
    assert parser.parse_args(["--log-level", "debug", "changes"]).log_level == "DEBUG"
    with pytest.raises(SystemExit):  # was a ValueError traceback from logging
        parser.parse_args(["--log-level", "bogus", "changes"])


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_cli_refuses_a_bad_port_clearly(port):
    result = run_tubewatch("api", "--port", port)
    assert result.returncode == 2
    assert "argument --port: invalid port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad_url", [False, True], ids=["bad-values", "bad-database-url"])
def test_cli_reports_bad_configuration_without_a_traceback(tmp_path, bad_url):
    database_url = "postgres:/SECRETISH@nowhere" if bad_url else f"sqlite:///{tmp_path / 'c.db'}"
    result = run_tubewatch(
        "keys",
        "create",
        "--name",
        "x",
        TUBEWATCH_DATABASE_URL=database_url,
        TUBEWATCH_DATA_DIR=str(tmp_path),
        TUBEWATCH_POLL_INTERVAL_S="-5",
        TUBEWATCH_ALLOW_PRIVATE_TARGETS="maybe-SECRETISH",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "TUBEWATCH_POLL_INTERVAL_S" in result.stderr
    assert "TUBEWATCH_ALLOW_PRIVATE_TARGETS" in result.stderr
    assert ("TUBEWATCH_DATABASE_URL" in result.stderr) is bad_url
    assert "SECRETISH" not in result.stderr  # values are never echoed
    assert result.stdout == ""  # no key was minted


def test_metrics_endpoint_serves_the_default_registry():
    import httpx
    from prometheus_client import Counter

    from tubewatch.metrics_endpoint import serve_metrics

    Counter("tubewatch_test_endpoint_probe", "a counter only this test uses").inc()
    port = serve_metrics("127.0.0.1:0")
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "tubewatch_test_endpoint_probe_total 1.0" in body


def test_metrics_bind_must_be_host_port():
    from tubewatch.metrics_endpoint import serve_metrics

    with pytest.raises(ValueError, match="HOST:PORT"):
        serve_metrics("9100x")


def test_poller_process_serves_metrics_when_bound(tmp_path):
    """`tubewatch poller` with TUBEWATCH_METRICS_BIND answers /metrics with its counters."""
    import os
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWATCH_")}
    env.update(
        TUBEWATCH_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}",
        TUBEWATCH_METRICS_BIND=f"127.0.0.1:{port}",
        TUBEWATCH_DATA_DIR=str(tmp_path),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tubewatch.cli", "poller"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = ""
        for _ in range(100):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert "tubewatch_youtube_quota_units_total" in body
    finally:
        proc.terminate()
        proc.wait(30)


def test_ctrl_c_while_a_command_loads_is_one_line_and_exit_130(monkeypatch, capsys):
    """Ctrl-C before a command has its own signal handling (while its modules import)."""
    import tubewatch.cli as cli

    def interrupted(args):  # as if Ctrl-C arrived while the command's modules import
        raise KeyboardInterrupt

    # (patched before it configures logging: the process's loggers stay as the tests set them)
    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["changes"]) == 130
    assert capsys.readouterr().err.strip() == "tubewatch changes: interrupted"


def test_sigterm_while_a_command_starts_unwinds_and_exits_143(monkeypatch, capsys, tmp_path):
    """SIGTERM before a command has its own handlers: cleanup still runs (``finally``, context
    managers), one line, exit 143; afterwards the caller's SIGTERM handler is back."""
    import tubewatch.cli as cli

    cleaned = tmp_path / "cleaned"

    def starting(args):  # as if SIGTERM arrived while the command starts
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here, at once
        finally:
            cleaned.touch()
        return 0

    monkeypatch.setattr(cli, "_run", starting)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["changes"]) == 143
    assert capsys.readouterr().err.strip() == "tubewatch changes: terminated before it started"
    assert cleaned.exists()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("demo", "TUBEWATCH_POLL_INTERVAL_S", "soon"),  # the demo's own default steps aside
        ("notifier", "TUBEWATCH_NOTIFIER_WORKERS", "lots"),  # an internal knob, validated too
    ],
)
def test_a_bad_variable_stops_the_command_with_a_clear_error(tmp_path, command, variable, value):
    result = run_tubewatch(
        command,
        cwd=tmp_path,
        TUBEWATCH_DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
        TUBEWATCH_DATA_DIR=str(tmp_path),
        **{variable: value},
    )
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
