"""Key material kept in the data dir: JWT signing keys and the code-hashing key.

Files are created with O_EXCL and mode 0600, so when several processes start at once the
first writer wins and the others read what it wrote. Several instances on different hosts
share the same ``data/keys`` (copy it or mount it) - see docs/deployment.md.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sproutgate.private_files import private_dir


def write_new_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file (in a 0700 directory when this makes it); False when
    another process created it first."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # exactly, whatever the umask
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, fails if the target exists
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def keys_dir(data_dir: Path) -> Path:
    private_dir(data_dir)
    d = private_dir(data_dir / "keys")
    os.chmod(d, 0o700)
    return d


def load_or_create_secret(data_dir: Path, name: str, nbytes: int = 32) -> bytes:
    path = keys_dir(data_dir) / name
    if not path.exists():
        write_new_file(path, secrets.token_bytes(nbytes).hex().encode())
    return bytes.fromhex(path.read_text().strip())


def generate_signing_key(data_dir: Path) -> str:
    """Create a new ES256 key; returns its kid. The newest key signs, all keys verify."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Nanoseconds, so that file names sort by age even for keys made within one second (older
    # kids of whole seconds still sort correctly against these).
    kid = f"{time.time_ns():019d}-{secrets.token_hex(4)}"
    write_new_file(keys_dir(data_dir) / f"jwt-es256-{kid}.pem", pem)
    return kid


def load_signing_keys(data_dir: Path, create: bool = True) -> list[tuple[str, ec.EllipticCurvePrivateKey]]:
    """All signing keys, oldest first. Creates the first one on first start."""
    d = keys_dir(data_dir)
    files = sorted(d.glob("jwt-es256-*.pem"))
    if not files and create:
        lock = d / ".first-key"
        if write_new_file(lock, b"1"):
            generate_signing_key(data_dir)
        else:
            for _ in range(100):  # another process is writing the first key
                if list(d.glob("jwt-es256-*.pem")):
                    break
                time.sleep(0.05)
        files = sorted(d.glob("jwt-es256-*.pem"))
    keys = []
    for f in files:
        key = serialization.load_pem_private_key(f.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        keys.append((f.name.removeprefix("jwt-es256-").removesuffix(".pem"), key))
    return keys
