"""Secret keys: scrypt hashes, the verification cache, and the generated system key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sgt.services import secrets
from sgt.services.secrets import (
    KeyVerifier,
    hash_secret_key,
    keys_match,
    new_salt,
    resolve_system_key,
)


def test_the_hash_is_salted_and_never_the_key() -> None:
    salt = new_salt()
    digest = hash_secret_key("hunter2", salt)
    assert len(digest) == 32
    assert b"hunter2" not in digest
    assert digest == hash_secret_key("hunter2", salt)
    assert digest != hash_secret_key("hunter2", new_salt())
    assert digest != hash_secret_key("hunter3", salt)


def test_keys_match_compares_exactly() -> None:
    assert keys_match("abc", "abc")
    assert not keys_match("abc", "abd")
    assert not keys_match("abc", "abc ")
    assert not keys_match("", "abc")


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = secrets.hash_secret_key

    def counting(secret_key: str, salt: bytes) -> bytes:
        calls.append(secret_key)
        return real(secret_key, salt)

    monkeypatch.setattr(secrets, "hash_secret_key", counting)
    return calls


def test_the_verifier_remembers_a_matching_key(scrypt_calls: list[str]) -> None:
    verifier = KeyVerifier()
    salt = new_salt()
    stored = hash_secret_key("right", salt)
    scrypt_calls.clear()
    assert verifier.verify("right", stored_hash=stored, salt=salt)
    assert verifier.verify("right", stored_hash=stored, salt=salt)
    assert scrypt_calls == ["right"], "the second check is served from memory"


def test_a_wrong_key_always_pays_for_scrypt(scrypt_calls: list[str]) -> None:
    verifier = KeyVerifier()
    salt = new_salt()
    stored = hash_secret_key("right", salt)
    assert verifier.verify("right", stored_hash=stored, salt=salt)
    scrypt_calls.clear()
    assert not verifier.verify("wrong", stored_hash=stored, salt=salt)
    assert not verifier.verify("wrong", stored_hash=stored, salt=salt)
    assert scrypt_calls == ["wrong", "wrong"]


def test_a_rotated_key_is_not_served_from_memory() -> None:
    verifier = KeyVerifier()
    old_salt, new = new_salt(), new_salt()
    old_hash = hash_secret_key("old", old_salt)
    assert verifier.verify("old", stored_hash=old_hash, salt=old_salt)
    new_hash = hash_secret_key("new", new)
    assert not verifier.verify("old", stored_hash=new_hash, salt=new)
    assert verifier.verify("new", stored_hash=new_hash, salt=new)


def test_an_unknown_user_is_refused_after_the_same_work(scrypt_calls: list[str]) -> None:
    verifier = KeyVerifier()
    scrypt_calls.clear()
    assert not verifier.verify("anything", stored_hash=None, salt=None)
    assert scrypt_calls == ["anything"], "unknown users cost one scrypt like known ones"


def test_a_configured_system_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    assert resolve_system_key("configured", tmp_path / "data") == "configured"
    assert not (tmp_path / "data").exists()


def test_without_one_a_key_is_generated_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    key = resolve_system_key(None, data_dir)
    path = data_dir / "system_key"
    assert len(key) >= 32
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    assert str(path) in printed.out + printed.err, "the operator is told where the key is"
    assert resolve_system_key(None, data_dir) == key, "the next start reads the same key"
    assert resolve_system_key("", data_dir) == key
    assert [p.name for p in data_dir.iterdir()] == ["system_key"], "no scratch file is left"


def test_each_data_directory_gets_its_own_random_key(tmp_path: Path) -> None:
    assert resolve_system_key(None, tmp_path / "a") != resolve_system_key(None, tmp_path / "b")


def test_recalling_never_pays_for_scrypt(scrypt_calls: list[str]) -> None:
    verifier = KeyVerifier()
    salt = new_salt()
    stored = secrets.hash_secret_key("right", salt)
    scrypt_calls.clear()
    assert not verifier.recalls("right", stored_hash=stored, salt=salt)
    assert verifier.verify("right", stored_hash=stored, salt=salt)
    assert verifier.recalls("right", stored_hash=stored, salt=salt)
    assert not verifier.recalls("wrong", stored_hash=stored, salt=salt)
    assert scrypt_calls == ["right"]
