"""`sgt admin` through click's CliRunner on a temporary data directory: users are created,
rotated, expired and listed without HTTP, and the service sees the result. Whatever way a command
ends, it leaves its database free: no file held open, no PostgreSQL connection left behind."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from pg_support import PostgresDatabases, server_url
from sgt.cli.main import cli
from sgt.config import Settings
from sgt.services import users
from sgt.services.context import ServiceContext, open_context
from sgt.storage.queue import TrainingQueue


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./sgt.env of the repository
    monkeypatch.setenv("SGT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def system_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SGT_SYSTEM_KEY", "configured-system-key")
    return "configured-system-key"


@pytest.fixture
def service(data_dir: Path, system_key: str) -> Iterator[ServiceContext]:
    """What the API would see on the same data directory."""
    opened = open_context(Settings(data_dir=data_dir, system_key="unused"))
    yield opened
    opened.close()


def sgt(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_migrate_creates_the_database(data_dir: Path) -> None:
    result = sgt("admin", "migrate")
    assert result.exit_code == 0, result.output
    assert (data_dir / "sgt.db").exists()
    assert sgt("admin", "migrate").exit_code == 0, "migrating twice is harmless"


def test_system_key_is_generated_once_owner_only(data_dir: Path) -> None:
    first = sgt("admin", "system-key")
    assert first.exit_code == 0
    key = first.stdout.strip().splitlines()[-1]
    path = data_dir / "system_key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sgt("admin", "system-key").stdout.strip() == key


def test_a_printed_user_key_is_alone_on_stdout_even_on_first_use(data_dir: Path) -> None:
    # `KEY=$(sgt admin user create alice)` must capture the key, not the notice that a system
    # key was generated on this first use of the data directory.
    result = sgt("admin", "user", "create", "alice", "--key", "chosen")
    assert result.exit_code == 0
    assert (data_dir / "system_key").exists()
    assert result.stdout == "chosen\n"


def test_a_configured_system_key_is_printed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("sgtone_key", "from-the-original-variable")
    assert sgt("admin", "system-key").output.strip() == "from-the-original-variable"
    assert not (data_dir / "system_key").exists()


def test_user_create_with_a_key(service: ServiceContext) -> None:
    result = sgt("admin", "user", "create", "alice", "--key", "chosen", "--doc", "a note")
    assert result.exit_code == 0 and result.stdout.strip() == "chosen"
    assert users.is_authentic(service, "alice", "chosen")
    assert users.list_users(service) == [("alice", "a note", None)]


def test_user_create_generates_a_key(service: ServiceContext) -> None:
    key = sgt("admin", "user", "create", "bob").stdout.strip()
    assert len(key) >= 20
    assert users.is_authentic(service, "bob", key)


def test_rotate_revokes_the_old_key(service: ServiceContext) -> None:
    sgt("admin", "user", "create", "alice", "--key", "old", "--doc", "kept")
    result = sgt("admin", "user", "rotate", "alice", "--key", "new")
    assert result.exit_code == 0 and result.stdout.strip() == "new"
    assert not users.is_authentic(service, "alice", "old")
    assert users.is_authentic(service, "alice", "new")
    assert users.list_users(service) == [("alice", "kept", None)], "doc survives rotation"


def test_rotate_refuses_an_unknown_user(service: ServiceContext) -> None:
    result = CliRunner().invoke(cli, ["admin", "user", "rotate", "nobody"])
    assert result.exit_code != 0
    assert "nobody" in result.output
    assert users.list_users(service) == []


def test_expire_now_at_a_time_and_never(service: ServiceContext) -> None:
    sgt("admin", "user", "create", "alice", "--key", "k")
    assert sgt("admin", "user", "expire", "alice").exit_code == 0
    assert not users.is_authentic(service, "alice", "k")
    assert sgt("admin", "user", "expire", "alice", "--at", "2999-01-01 00:00:00").exit_code == 0
    assert users.is_authentic(service, "alice", "k")
    assert sgt("admin", "user", "expire", "alice", "--at", "2000-01-01 00:00:00").exit_code == 0
    assert not users.is_authentic(service, "alice", "k")
    assert sgt("admin", "user", "expire", "alice", "--never").exit_code == 0
    assert users.is_authentic(service, "alice", "k")


def test_expire_refuses_bad_input(service: ServiceContext) -> None:
    sgt("admin", "user", "create", "alice", "--key", "k")
    bad_time = CliRunner().invoke(cli, ["admin", "user", "expire", "alice", "--at", "soon"])
    assert bad_time.exit_code != 0
    unknown = CliRunner().invoke(cli, ["admin", "user", "expire", "nobody"])
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    assert users.is_authentic(service, "alice", "k")


def test_list_shows_every_user(service: ServiceContext) -> None:
    sgt("admin", "user", "create", "b", "--key", "k", "--end-time", "2031-02-03 04:05:06")
    sgt("admin", "user", "create", "a", "--key", "k", "--doc", "first")
    lines = sgt("admin", "user", "list").stdout.splitlines()
    assert lines == ["a\t-\tfirst", "b\t2031-02-03 04:05:06\t"]


def files_held_open_under(directory: Path) -> list[str]:
    """What this process has open under `directory` (Linux: /proc/self/fd)."""
    held = []
    for descriptor in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:  # the descriptor listing the directory itself, closed by now
            continue
        if target.startswith(str(directory)):
            held.append(target)
    return held


FAILING_ADMIN_COMMANDS = {
    "bad end time": ["admin", "user", "create", "alice", "--end-time", "soon"],
    "unknown user rotated": ["admin", "user", "rotate", "nobody"],
    "unknown user expired": ["admin", "user", "expire", "nobody"],
}


@pytest.mark.parametrize("args", FAILING_ADMIN_COMMANDS.values(), ids=FAILING_ADMIN_COMMANDS)
def test_a_failed_command_leaves_the_sqlite_file_closed(data_dir: Path, args: list[str]) -> None:
    assert sgt("admin", "migrate").exit_code == 0
    assert files_held_open_under(data_dir) == []
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert files_held_open_under(data_dir) == []


def test_every_admin_command_leaves_the_sqlite_file_closed(data_dir: Path) -> None:
    for args in (
        ["migrate"],
        ["system-key"],
        ["user", "create", "alice", "--key", "k"],
        ["user", "rotate", "alice"],
        ["user", "expire", "alice"],
        ["user", "list"],
    ):
        assert sgt("admin", *args).exit_code == 0
        assert files_held_open_under(data_dir) == [], args


@pytest.fixture(scope="module")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.close()


def drop_database(url: str) -> None:
    """DROP DATABASE without FORCE: PostgreSQL refuses while any connection to it is open."""
    name = url.rsplit("/", 1)[1]
    maintenance = server_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}"')


PG_ADMIN_COMMANDS = {
    "user created": (["admin", "user", "create", "alice", "--key", "k"], 0),
    "unknown user rotated": (["admin", "user", "rotate", "nobody"], 1),
    "secret_id longer than the column": (["admin", "user", "create", "a" * 600], 1),
    "data directory unusable": (["admin", "system-key"], None),
}


@pytest.mark.postgres
@pytest.mark.parametrize(("args", "exit_code"), PG_ADMIN_COMMANDS.values(), ids=PG_ADMIN_COMMANDS)
def test_a_postgresql_database_can_be_dropped_after_any_admin_command(
    pg_databases: PostgresDatabases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    exit_code: int | None,
) -> None:
    url = pg_databases.create()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SGT_DATABASE_URL", url)
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    monkeypatch.setenv("SGT_DATA_DIR", str(not_a_directory))  # only system-key writes there
    if args != ["admin", "system-key"]:
        monkeypatch.setenv("SGT_SYSTEM_KEY", "configured")
    result = CliRunner().invoke(cli, args)
    if exit_code is None:
        assert result.exit_code != 0
    else:
        assert result.exit_code == exit_code, result.output
    drop_database(url)


def test_trainers_lists_each_trainer_with_its_heartbeat_and_model(
    service: ServiceContext,
) -> None:
    assert sgt("admin", "trainers", "--json").output.strip() == "[]"
    TrainingQueue(service.db, worker_name="box:42:abcd", lease_seconds=30.0, restarts=1).beat(None)

    table = sgt("admin", "trainers")
    assert table.exit_code == 0, table.output
    header, row = table.output.splitlines()
    assert header.split()[:3] == ["NAME", "HOST", "PID"]
    assert row.startswith("box:42:abcd") and row.split()[-1] == "1"
    [listed] = json.loads(sgt("admin", "trainers", "--json").output)
    assert (listed["name"], listed["model_id"], listed["restarts"]) == ("box:42:abcd", None, 1)
    assert 0 <= listed["last_beat_age_seconds"] < 60
