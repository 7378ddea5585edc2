"""The client commands through click's CliRunner against a small loopback HTTP fake: the shared
server and credential options (names, environment variables, defaults, --help) and the client
they build reach the wire as a user would see; failures end in one line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from sgt.cli.main import cli

CREDENTIALED_COMMANDS = [
    ["model", "create"],
    ["model", "list"],
    ["model", "delete"],
    ["model", "clone"],
    ["model", "set-client-data"],
    ["run"],
    ["suggest"],
    ["upload"],
    ["status"],
    ["clear"],
    ["check-auth"],
    ["versions"],
    ["rollback"],
]


class FakeServer:
    """Answers each path with a canned JSON value (status 200) or error body (status 400) and
    records what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.removeprefix("/sgt")
                fake.received.append((path, body))
                status, answer = fake.answers.get(path, (200, None))
                content = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *_: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture
def environment(server: FakeServer) -> dict[str, str | None]:
    return {"SGT_URL": server.url, "SGT_SECRET_ID": "alice", "SGT_SECRET_KEY": "alices-key"}


def sgt(args: list[str], environment: dict[str, str | None] | None = None) -> Result:
    clean = {"SGT_URL": None, "SGT_SECRET_ID": None, "SGT_SECRET_KEY": None}
    return CliRunner(env={**clean, **(environment or {})}).invoke(cli, args, prog_name="sgt")


def options_of(path: list[str]) -> dict[str, click.Option]:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize("path", CREDENTIALED_COMMANDS, ids=" ".join)
def test_every_client_command_takes_the_server_and_credentials_from_options_or_env(
    path: list[str],
) -> None:
    options = options_of(path)
    url, secret_id, secret_key = options["url"], options["secret_id"], options["secret_key"]
    assert (url.opts, url.envvar, url.default) == (["--url"], "SGT_URL", "http://127.0.0.1:6006")
    assert (secret_id.opts, secret_id.envvar, secret_id.required) == (
        ["--secret-id"],
        "SGT_SECRET_ID",
        True,
    )
    assert (secret_key.opts, secret_key.envvar, secret_key.required) == (
        ["--secret-key"],
        "SGT_SECRET_KEY",
        True,
    )
    shown = sgt([*path, "--help"]).output
    for text in ("[env SGT_URL]", "[default:", "[env SGT_SECRET_ID]", "[env SGT_SECRET_KEY]"):
        assert text in shown


def test_model_types_needs_only_the_server(server: FakeServer) -> None:
    assert set(options_of(["model", "types"])) == {"url"}
    server.answers["/public/list_model_type"] = (200, ["std", "weights"])
    result = sgt(["model", "types", "--url", server.url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ["std", "weights"]
    assert server.received == [("/public/list_model_type", {})]


def test_credentials_from_the_environment_reach_the_server(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    server.answers["/public/check_auth_token"] = (200, True)
    result = sgt(["check-auth"], environment)
    assert (result.exit_code, result.stdout) == (0, "valid\n")
    assert server.received == [
        ("/public/check_auth_token", {"secret_id": "alice", "secret_key": "alices-key"})
    ]


def test_options_override_the_environment(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    server.answers["/public/get_sgt_model_train_status"] = (200, {"sample_count": 3})
    result = sgt(["status", "arm", "--app", "rig", "--secret-id", "bob"], environment)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"sample_count": 3}
    ((_, body),) = server.received
    assert (body["secret_id"], body["secret_key"], body["name"]) == ("bob", "alices-key", "arm")


def test_chunk_rows_reaches_the_client(
    server: FakeServer, environment: dict[str, str | None], tmp_path: Path
) -> None:
    inputs, labels = tmp_path / "x.json", tmp_path / "y.json"
    inputs.write_text(json.dumps([[float(i), 0.0] for i in range(5)]))
    labels.write_text(json.dumps([[float(i)] for i in range(5)]))
    upload = ["upload", "arm", "--app", "rig", "--inputs", str(inputs), "--labels", str(labels)]
    assert sgt(upload, environment).exit_code == 0
    assert uploads(server) == 1, "the default of 5000 rows sends five rows at once"
    server.received.clear()
    result = sgt([*upload, "--chunk-rows", "2"], environment)
    assert result.exit_code == 0, result.output
    assert uploads(server) == 3


def uploads(server: FakeServer) -> int:
    """Upload requests only: a client first asks a server it does not know whether it speaks
    the binary extension (one list_model_type), which is not a chunk."""
    return sum(path == "/public/upload_sgt_model_train_data" for path, _ in server.received)


def test_an_api_error_is_one_line_and_exit_status_1(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    error = {"exception": "FindModelException", "message": "no model 'arm' in app 'rig'"}
    server.answers["/public/clear_sgt_model_train_data"] = (400, error)
    result = sgt(["clear", "arm", "--app", "rig"], environment)
    assert result.exit_code == 1
    assert result.output == "Error: FindModelException: no model 'arm' in app 'rig'\n"


def test_a_url_without_its_scheme_is_a_usage_error(environment: dict[str, str | None]) -> None:
    result = sgt(["check-auth", "--url", "127.0.0.1:6006"], environment)
    assert result.exit_code == 2
    assert "base_url must start with http:// or https://" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


VERSIONS = [
    {
        "version": 3,
        "created_at": "2026-12-02 10:00:00",
        "sample_count": 1200,
        "val_loss": 0.00125,
        "served": False,
    },
    {
        "version": 2,
        "created_at": "2026-12-01 09:30:00",
        "sample_count": 800,
        "val_loss": None,
        "served": True,
    },
]


def test_versions_prints_a_table_newest_first_with_the_served_one_marked(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    server.answers["/public/list_sgt_model_versions"] = (200, VERSIONS)
    result = sgt(["versions", "arm", "--app", "rig"], environment)
    assert result.exit_code == 0, result.output
    header, newest, served = result.stdout.splitlines()
    assert header.split() == ["version", "created_at", "(UTC)", "samples", "val_loss"]
    assert newest.split() == ["3", "2026-12-02", "10:00:00", "1200", "0.00125"]
    assert served.split() == ["*", "2", "2026-12-01", "09:30:00", "800", "-"]
    ((path, body),) = server.received
    assert path == "/public/list_sgt_model_versions"
    assert (body["name"], body["app_name"]) == ("arm", "rig")


def test_versions_json_is_the_answer_itself(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    server.answers["/public/list_sgt_model_versions"] = (200, VERSIONS)
    result = sgt(["versions", "arm", "--app", "rig", "--json"], environment)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == VERSIONS


def test_rollback_sends_the_version_and_says_what_is_served(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    result = sgt(["rollback", "arm", "2", "--app", "rig"], environment)
    assert (result.exit_code, result.stdout) == (0, "model 'arm' now serves version 2\n")
    ((path, body),) = server.received
    assert path == "/public/rollback_sgt_model"
    assert (body["name"], body["app_name"], body["version"]) == ("arm", "rig", 2)


def test_rollback_to_an_unknown_version_is_one_line_and_exit_status_1(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    error = {"exception": "FindModelException", "message": "model 'arm' has no version 9"}
    server.answers["/public/rollback_sgt_model"] = (400, error)
    result = sgt(["rollback", "arm", "9", "--app", "rig"], environment)
    assert result.exit_code == 1
    assert result.output == "Error: FindModelException: model 'arm' has no version 9\n"


def test_rollback_refuses_a_version_below_1_before_calling(
    server: FakeServer, environment: dict[str, str | None]
) -> None:
    result = sgt(["rollback", "arm", "0", "--app", "rig"], environment)
    assert result.exit_code == 2
    assert server.received == []


def test_run_with_std_prints_mean_std_and_out_of_range(
    server: FakeServer, environment: dict[str, str | None], tmp_path: Path
) -> None:
    inputs = tmp_path / "x.json"
    inputs.write_text(json.dumps([[0.0, 1.0]]))
    answer = {"mean": [[1.5]], "std": [[0.25]], "out_of_range": [False]}
    server.answers["/public/run_sgt_model"] = (200, answer)
    result = sgt(["run", "arm", "--app", "rig", str(inputs), "--std"], environment)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == answer
    [(_, body)] = [item for item in server.received if item[0] == "/public/run_sgt_model"]
    assert body["return_std"] is True
    refused = sgt(["run", "arm", "--app", "rig", str(inputs), "--std", "-o", "x.csv"], environment)
    assert refused.exit_code == 2 and ".json" in refused.output


def test_suggest_prints_the_indices(
    server: FakeServer, environment: dict[str, str | None], tmp_path: Path
) -> None:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]))
    server.answers["/public/suggest_sgt_model_samples"] = (200, [2, 0])
    result = sgt(["suggest", "arm", "--app", "rig", str(pool), "-k", "2"], environment)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [2, 0]
    [(_, body)] = [
        item for item in server.received if item[0] == "/public/suggest_sgt_model_samples"
    ]
    assert body["k"] == 2
