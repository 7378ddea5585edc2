"""The client runs where only the standard library exists: a DCC's own Python, from 3.7 on.

Each check runs a fresh interpreter with -I -S (no site-packages, no environment) and only the
package's folder on sys.path. Set CLIENT_TEST_PYTHONS to more interpreters (os.pathsep separated,
e.g. pyenv's 3.7 and 3.8) to run the same checks under each of them.
"""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

CLIENT_DIR = pathlib.Path(__file__).resolve().parents[3] / "src" / "sgt" / "client"
PYTHONS = [sys.executable] + [
    path for path in os.environ.get("CLIENT_TEST_PYTHONS", "").split(os.pathsep) if path
]

# Imports the package and lists modules outside the standard library. Before 3.10 there is no
# sys.stdlib_module_names, so a module counts as standard when it is built in or lives under the
# interpreter's stdlib folder (site-packages is not on the path under -S anyway).
CHECK_IMPORTS = textwrap.dedent(
    """
    import importlib, sys
    sys.path.insert(0, sys.argv[1])
    package = sys.argv[2]
    importlib.import_module(package)
    loaded = dict(sys.modules)  # before the checking code imports anything of its own
    import os, sysconfig
    paths = sysconfig.get_paths()
    stdlib_dirs = tuple(os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib"))

    def is_stdlib(name, module):
        if hasattr(sys, "stdlib_module_names"):
            return name.partition(".")[0] in sys.stdlib_module_names
        path = getattr(module, "__file__", None)
        return path is None or os.path.realpath(path).startswith(stdlib_dirs)

    top = package.partition(".")[0]
    foreign = sorted(
        name for name, module in loaded.items()
        if module is not None and name.partition(".")[0] not in (top, "__main__")
        and not is_stdlib(name, module)
    )
    ours = sorted(name for name in loaded if name.partition(".")[0] == top)
    print(repr((foreign, ours)))
    """
)

# Drives the copied package through a fake transport: chunked run, an error, an upload, in
# plain JSON and over the binary extension (the fake decodes it with struct, not numpy).
USE_COPY = textwrap.dedent(
    """
    import base64, json, struct, sys
    sys.path.insert(0, sys.argv[1])
    import sgt_client

    def sums(data):
        if isinstance(data, list):
            return [[sum(r)] for r in data]
        rows, columns = data["shape"]
        flat = struct.unpack("<%df" % (rows * columns), base64.b64decode(data["base64"]))
        raw = struct.pack("<%df" % rows, *(sum(flat[i * columns:][:columns]) for i in range(rows)))
        return {"dtype": "float32", "shape": [rows, 1], "base64": base64.b64encode(raw).decode()}

    class Transport(sgt_client.BaseTransport):
        def __init__(self, headers):
            self.headers = headers

        def post(self, url, body, headers, timeout_seconds):
            request = json.loads(body.decode("utf-8"))
            if url.endswith("/run_sgt_model"):
                return 200, self.headers, json.dumps(sums(request["data"])).encode()
            if url.endswith("/delete_sgt_model"):
                reply = {"exception": "sgt.flask_bp.FindModelException", "message": "gone"}
                return 400, {"X-Request-ID": "r9"}, json.dumps(reply).encode()
            return 200, self.headers, b"null"

    for headers in ({}, {"X-SGT-Extensions": "binary"}):
        transport = Transport(headers)
        client = sgt_client.Client("http://h:1", "a", "b", transport=transport, chunk_rows=2)
        assert client.run("m", "app", [[1, 2], [3, 4], [5, 6]]) == [[3], [7], [11]]
        client.upload_train_data("m", "app", [[1, 2]] * 5, [[1]] * 5)
    assert client._server_has_binary is True
    try:
        client.delete_model("m", "app")
    except sgt_client.FindModelException as exc:
        assert exc.request_id == "r9"
    else:
        raise AssertionError("no exception")
    print("ok")
    """
)


def run_isolated(python: str, script: str, *args: str) -> str:
    completed = subprocess.run(
        [python, "-I", "-S", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=os.path.abspath(os.sep),  # before 3.11, -I still puts the current folder on the path
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


@pytest.mark.parametrize("python", PYTHONS)
def test_importing_the_client_loads_only_the_standard_library(python):
    foreign, ours = ast.literal_eval(
        run_isolated(python, CHECK_IMPORTS, str(CLIENT_DIR.parents[1]), "sgt.client")
    )

    assert foreign == []
    assert all(name == "sgt" or name.startswith("sgt.client") for name in ours), ours


@pytest.mark.parametrize("python", PYTHONS)
def test_the_folder_works_copied_alone_under_another_name(python, tmp_path):
    shutil.copytree(
        CLIENT_DIR, tmp_path / "sgt_client", ignore=shutil.ignore_patterns("__pycache__")
    )

    foreign, _ = ast.literal_eval(run_isolated(python, CHECK_IMPORTS, str(tmp_path), "sgt_client"))
    assert foreign == []
    assert run_isolated(python, USE_COPY, str(tmp_path)) == "ok"


@pytest.mark.parametrize("source", sorted(CLIENT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_the_source_parses_as_python_3_7(source):
    # Catches new syntax (walrus, match, except*) even where no 3.7 interpreter is at hand.
    tree = ast.parse(source.read_text(encoding="utf-8"), feature_version=(3, 7))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.partition(".")[0] != "sgt", "import it relatively: " + node.module
        if isinstance(node, ast.Import):
            assert all(alias.name.partition(".")[0] != "sgt" for alias in node.names)
