"""Secret keys: salted scrypt hashes, constant-time checks, and the system key.

The plain key is never stored or logged; a copy of the database gives only scrypt hashes.
Checking a key costs one scrypt (tens of milliseconds), so a verified (user, hash, key digest)
is remembered in memory: repeated requests cost one SHA-256, and a rotated key (new hash) or a
wrong key always goes through scrypt again. This is the process's one credential cache: the API
asks it (through `recalls`) whether a small request may be served on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

SALT_BYTES = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
VERIFIED_CACHE_SIZE = 4096
SYSTEM_KEY_FILE = "system_key"


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def hash_secret_key(secret_key: str, salt: bytes) -> bytes:
    """scrypt of the key with the user's salt."""
    return hashlib.scrypt(
        secret_key.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


class KeyVerifier:
    """Checks presented keys against stored hashes, remembering the ones that matched."""

    def __init__(self) -> None:
        self._verified: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()
        # Unknown users are checked against this so that their answer takes as long as a real one.
        self._dummy_salt = new_salt()
        self._dummy_hash = hash_secret_key(secrets.token_hex(16), self._dummy_salt)

    def verify(self, presented: str, *, stored_hash: bytes | None, salt: bytes | None) -> bool:
        """Whether `presented` is the key behind `stored_hash`: one scrypt unless remembered."""
        if stored_hash is None or salt is None:
            hmac.compare_digest(hash_secret_key(presented, self._dummy_salt), self._dummy_hash)
            return False
        if self.recalls(presented, stored_hash=stored_hash, salt=salt):
            return True
        if not hmac.compare_digest(hash_secret_key(presented, salt), stored_hash):
            return False
        digest = hashlib.sha256(presented.encode()).digest()
        entry = (stored_hash, salt)
        with self._lock:
            self._verified[entry] = digest
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def recalls(self, presented: str, *, stored_hash: bytes, salt: bytes) -> bool:
        """Whether `presented` matched `stored_hash` lately; memory only, never a scrypt.

        False says nothing about the key: only `verify` can tell.
        """
        digest = hashlib.sha256(presented.encode()).digest()
        entry = (stored_hash, salt)
        with self._lock:
            remembered = self._verified.get(entry)
            if remembered is not None:
                self._verified.move_to_end(entry)
        return remembered is not None and hmac.compare_digest(remembered, digest)


def keys_match(presented: str, expected: str) -> bool:
    """Constant-time comparison of two keys."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def resolve_system_key(configured: str | None, data_dir: Path) -> str:
    """The configured system key, else the one generated into the data directory on first start."""
    if configured:
        return configured
    path = data_dir / SYSTEM_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # Written aside then linked into place: when several processes start at once, exactly one
    # key wins and nobody ever reads a half-written file.
    scratch = path.with_name(f".{SYSTEM_KEY_FILE}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(scratch, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        scratch.unlink()
    log.warning("no system key configured: generated one into %s (owner-only)", path)
    print(
        f"SGT: generated a system key into {path} (set SGT_SYSTEM_KEY to choose your own)",
        file=sys.stderr,
        flush=True,
    )
    return key
