"""`sgt.client` and the `sgt` client commands against a real `sgt serve`."""

from __future__ import annotations

import array
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from e2e_server import Session, SgtServer

from sgt.client import (
    AuthException,
    Client,
    CloneWeightsNetToMineException,
    CreateWeightsNetException,
    FindModelException,
    RunWeightsNetException,
    UploadDataException,
    UrllibTransport,
)

pytestmark = pytest.mark.e2e
SRC = Path(__file__).parents[2] / "src"


def client_of(user: Session, **options: object) -> Client:
    return Client(user.server.base_url, user.secret_id, user.secret_key, **options)  # type: ignore[arg-type]


def rows(count: int, width: int, seed: int) -> list[list[float]]:
    generator = random.Random(seed)
    return [[generator.uniform(-1, 1) for _ in range(width)] for _ in range(count)]


def test_every_client_method_against_the_server(alice: Session, bob: Session) -> None:
    client = client_of(alice)
    assert client.check_auth() is True
    assert "std" in client.list_model_types()
    client.create_model("arm", "rig", in_size=4, out_size=2, client_data={"k": 1}, is_public=True)
    with pytest.raises(CreateWeightsNetException):
        client.create_model("arm", "rig", in_size=4, out_size=2)
    client.update_client_data("arm", "rig", [1, 2])
    (record,) = client.list_my_models()
    assert record["client_data"] == [1, 2] and record["is_public"] is True
    assert any(m["user_unique_id"] == alice.secret_id for m in client.list_public_models())

    inputs = rows(250, 4, seed=1)
    labels = [[x[0] + x[1], x[2] * x[3]] for x in inputs]
    seen: list[tuple[int, int]] = []
    client_of(alice, chunk_rows=100).upload_train_data(
        "arm", "rig", inputs=inputs, labels=labels, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(100, 250), (200, 250), (250, 250)]
    assert client.train_status("arm", "rig")["sample_count"] == 250

    client_of(bob).clone_model(alice.secret_id, "arm", "arm-copy", "rig")
    with pytest.raises(CloneWeightsNetToMineException):
        client_of(bob).clone_model(alice.secret_id, "missing", "other", "rig")

    client.clear_train_data("arm", "rig")
    assert client.train_status("arm", "rig")["sample_count"] == 0
    with pytest.raises(RunWeightsNetException):
        client_of(alice, retries=0).run("arm", "rig", [[1.0, 2.0]])
    client.delete_model("arm", "rig")
    with pytest.raises(FindModelException) as raised:
        client.train_status("arm", "rig")
    assert raised.value.request_id
    with pytest.raises(AuthException):
        Client(alice.server.base_url, alice.secret_id, "wrong").list_my_models()


def test_chunked_run_answers_like_one_request(alice: Session) -> None:
    client_of(alice).create_model("wide", "rig", in_size=8, out_size=3)
    data = rows(2_500, 8, seed=2)
    whole = client_of(alice, chunk_rows=10_000).run("wide", "rig", data)
    chunked = client_of(alice, chunk_rows=300).run("wide", "rig", data)
    assert len(whole) == 2_500 and len(whole[0]) == 3
    assert chunked == whole


def _isolated_pythons() -> list[str]:
    extra = [p for p in os.environ.get("CLIENT_TEST_PYTHONS", "").split(os.pathsep) if p]
    return [sys.executable, *extra]


@pytest.mark.parametrize("python", _isolated_pythons())
def test_stdlib_only_interpreter_creates_uploads_and_runs(alice: Session, python: str) -> None:
    # -I -S: no site-packages, no user site, no environment; only src/ is on the path.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        from sgt.client import Client
        client = Client({alice.server.base_url!r}, {alice.secret_id!r}, {alice.secret_key!r})
        name = "py%d%d" % sys.version_info[:2]
        client.create_model(name, "dcc", in_size=2, out_size=1)
        client.upload_train_data(name, "dcc", pairs=[[[0, 1], [1]], [[1, 0], [1]], [[1, 1], [2]]])
        answer = client.run(name, "dcc", [[0.5, 0.5], [1, 2]])
        assert len(answer) == 2 and len(answer[0]) == 1, answer
        print(sys.version_info[:2], sorted(m for m in sys.modules if m.startswith("sgt")))
    """)
    done = subprocess.run(
        [python, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    print(done.stdout.strip())
    names = {m["name"] for m in client_of(alice).list_my_models()}
    assert any(name.startswith("py") for name in names)


def test_shell_commands_drive_every_step(alice: Session, tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "SGT_URL": alice.server.base_url,
        "SGT_SECRET_ID": alice.secret_id,
        "SGT_SECRET_KEY": alice.secret_key,
    }

    def sgt(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sgt", *arguments],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )

    inputs, labels = tmp_path / "x.csv", tmp_path / "y.json"
    data = rows(40, 2, seed=3)
    inputs.write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in data) + "\n")
    labels.write_text(json.dumps([[a - b] for a, b in data]))

    assert (
        sgt("model", "create", "cli", "--app", "sh", "--in-size", "2", "--out-size", "1").returncode
        == 0
    )
    uploaded = sgt("upload", "cli", "--app", "sh", "--inputs", str(inputs), "--labels", str(labels))
    assert uploaded.returncode == 0, uploaded.stderr
    assert json.loads(sgt("status", "cli", "--app", "sh").stdout)["sample_count"] == 40
    ran = sgt("run", "cli", "--app", "sh", str(inputs))
    assert ran.returncode == 0, ran.stderr
    assert len(json.loads(ran.stdout)) == 40
    output = tmp_path / "out.npy"
    assert sgt("run", "cli", "--app", "sh", str(inputs), "-o", str(output)).returncode == 0
    assert output.stat().st_size > 0
    listed = json.loads(sgt("model", "list").stdout)
    assert [m["name"] for m in listed] == ["cli"]
    assert sgt("model", "delete", "cli", "--app", "sh").returncode == 0
    missing = sgt("status", "cli", "--app", "sh")
    assert missing.returncode == 1 and "FindModelException" in missing.stderr


def test_wrong_credentials_fail_cleanly_in_the_shell(server: SgtServer) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgt",
            "check-auth",
            "--url",
            server.base_url,
            "--secret-id",
            "nobody",
            "--secret-key",
            "nothing",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (1, "invalid")


class RecordingTransport(UrllibTransport):
    """The default transport, keeping each request's path and whether it carried arrays."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bool]] = []

    def post(self, url: str, body: bytes, headers: Any, timeout_seconds: float) -> Any:
        fields = json.loads(body) if body.strip() else {}
        arrays = isinstance(fields.get("data", fields.get("train_data")), dict)
        self.sent.append((url.rsplit("/", 1)[1], arrays))
        return super().post(url, body, headers, timeout_seconds)


def float32_bytes(matrix: list[list[float]]) -> bytes:
    return array.array("f", [value for row in matrix for value in row]).tobytes()


def test_the_client_detects_the_binary_extension_once(alice: Session) -> None:
    transport = RecordingTransport()
    client = client_of(alice, transport=transport)
    client.create_model("auto", "rig", in_size=3, out_size=2)
    data = rows(20, 3, seed=4)

    client.upload_train_data("auto", "rig", inputs=data, labels=[r[:2] for r in data])
    client.run("auto", "rig", data)

    assert transport.sent == [
        ("create_sgt_model", False),
        ("upload_sgt_model_train_data", True),
        ("run_sgt_model", True),
    ]


def test_json_and_binary_give_the_same_results(alice: Session) -> None:
    # The same float32 numbers either way: binary answers are the model's float32 outputs
    # exactly; JSON answers are the shortest decimals that read back as them.
    plain, binary = client_of(alice, binary=False), client_of(alice, binary=True)
    inputs = rows(400, 6, seed=5)
    labels = [[x[0] * x[1] - x[2], x[3] + x[4] * x[5], x[5]] for x in inputs]
    for client, name in ((plain, "as-json"), (binary, "as-binary")):
        client.create_model(name, "rig", in_size=6, out_size=3)
        client.upload_train_data(name, "rig", inputs=inputs, labels=labels)
    assert plain.train_status("as-binary", "rig")["sample_count"] == 400
    assert binary.train_status("as-json", "rig")["sample_count"] == 400

    data = rows(3_000, 6, seed=6)
    from_json = plain.run("as-json", "rig", data)
    from_binary = binary.run("as-json", "rig", data)
    chunked = client_of(alice, binary=True, chunk_rows=700).run("as-json", "rig", data)

    assert len(from_binary) == 3_000 and len(set(map(tuple, from_binary))) > 1
    assert float32_bytes(from_json) == float32_bytes(from_binary)
    assert chunked == from_binary
    assert binary.run("as-json", "rig", []) == plain.run("as-json", "rig", []) == []


def test_binary_errors_are_the_json_errors(alice: Session) -> None:
    for client in (client_of(alice, binary=False), client_of(alice, binary=True)):
        with pytest.raises(FindModelException):
            client.run("missing", "rig", [[1.0]])
        with pytest.raises(FindModelException):
            client.upload_train_data("missing", "rig", inputs=[[1.0]], labels=[[1.0]])
    client_of(alice).create_model("narrow", "rig", in_size=2, out_size=1)
    for client in (client_of(alice, binary=False), client_of(alice, binary=True)):
        with pytest.raises(RunWeightsNetException, match="in_size=2"):
            client.run("narrow", "rig", [[1.0, 2.0, 3.0]])
        with pytest.raises(UploadDataException):
            client.upload_train_data("narrow", "rig", inputs=[[1.0]], labels=[[1.0]])
