"""The park's Ed25519 signing key for evidence packs.

* Created by `parkcarbon init` in the data folder (`evidence-keys/<key id>.pem`, PKCS#8 PEM), mode 0600 from the
  moment it exists (os.open with O_EXCL and the mode: no window in which another user could read it).
* Key id = the SHA-256 fingerprint of the raw 32-byte public key, in hex (`fingerprint`).
* Rotatable (`parkcarbon evidence keys rotate`): a new key signs from then on; the old private key file is deleted
  and its public key stays published (valid for the packs it signed).  A compromised key is revoked: still
  published, marked revoked, and verification refuses packs it signed.
* Every public key is in the metadata database and served by the portal at /evidence/public/keys.json (and each
  as PEM at /evidence/public/<key id>.pem).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from portal import audit
from portal.evidence.tables import SigningKeyRow

KEY_DIR = "evidence-keys"
PUBLIC_KEYS_PATH = "/evidence/public/keys.json"


class SigningKeyError(RuntimeError):
    """No usable signing key, or a key action that cannot be done; the message says what to do."""


def fingerprint(public: Ed25519PublicKey) -> str:
    """Key id: SHA-256 of the raw public key (32 bytes), hex."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_dir(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_DIR


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from creation, never replaced
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _create(engine: Engine, park_id: str, data_dir: Path, now: datetime) -> str:
    key = Ed25519PrivateKey.generate()
    key_id = fingerprint(key.public_key())
    _write_private(key_dir(data_dir) / f"{key_id}.pem", key)
    with Session(engine) as s, s.begin():
        s.add(SigningKeyRow(key_id=key_id, park_id=park_id, public_pem=public_pem(key.public_key()), created_at=now,
                            revoked_reason=""))
    return key_id


def _active_row(s: Session, park_id: str) -> SigningKeyRow | None:
    return s.scalars(select(SigningKeyRow).where(SigningKeyRow.park_id == park_id, SigningKeyRow.retired_at.is_(None),
                                                 SigningKeyRow.revoked_at.is_(None))
                     .order_by(SigningKeyRow.created_at.desc())).first()


def ensure_key(engine: Engine, park_id: str, data_dir: Path, actor: str = "cli") -> tuple[str, bool]:
    """The active key's id, creating the park's first key when it has none: (key id, created)."""
    with Session(engine) as s:
        row = _active_row(s, park_id)
    if row is not None and (key_dir(data_dir) / f"{row.key_id}.pem").exists():
        return row.key_id, False
    if row is not None:
        raise SigningKeyError(f"the active signing key {row.key_id} has no private key file in {key_dir(data_dir)}: "
                              "restore it from the backup, or run `parkcarbon evidence keys rotate` for a new one")
    key_id = _create(engine, park_id, data_dir, datetime.now(UTC))
    audit.record(engine, actor, "evidence_key_created", f"key:{key_id}")
    return key_id, True


def rotate(engine: Engine, park_id: str, data_dir: Path, actor: str) -> str:
    """A new signing key; the old one is retired (its public key stays published, its private file deleted)."""
    now = datetime.now(UTC)
    with Session(engine) as s:
        old = _active_row(s, park_id)
    key_id = _create(engine, park_id, data_dir, now)
    if old is not None:
        with Session(engine) as s, s.begin():
            s.get(SigningKeyRow, old.key_id).retired_at = now
        (key_dir(data_dir) / f"{old.key_id}.pem").unlink(missing_ok=True)
    audit.record(engine, actor, "evidence_key_rotated", f"key:{key_id}", retired=old.key_id if old else "")
    return key_id


def revoke(engine: Engine, key_id: str, actor: str, reason: str) -> None:
    """Mark a key revoked (compromised): packs it signed no longer verify against the published list."""
    with Session(engine) as s, s.begin():
        row = s.get(SigningKeyRow, key_id)
        if row is None:
            raise SigningKeyError(f"no signing key {key_id}")
        row.revoked_at, row.revoked_reason = datetime.now(UTC), reason or "revoked"
    audit.record(engine, actor, "evidence_key_revoked", f"key:{key_id}", reason=reason)


def active_key(engine: Engine, park_id: str, data_dir: Path) -> tuple[str, Ed25519PrivateKey]:
    """The key that signs packs now; SigningKeyError when there is none."""
    with Session(engine) as s:
        row = _active_row(s, park_id)
    if row is None:
        raise SigningKeyError("the park has no signing key: run `parkcarbon init` (or `parkcarbon evidence keys "
                              "rotate`)")
    path = key_dir(data_dir) / f"{row.key_id}.pem"
    if not path.exists():
        raise SigningKeyError(f"the private key of signing key {row.key_id} is missing ({path}): restore it or "
                              "rotate")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey) or fingerprint(key.public_key()) != row.key_id:
        raise SigningKeyError(f"{path} is not the Ed25519 key {row.key_id}")
    return row.key_id, key


def published(engine: Engine, park_id: str) -> list[dict]:
    """Every public key of the park, oldest first, with its status (active, retired, revoked)."""
    with Session(engine) as s:
        rows = s.scalars(select(SigningKeyRow).where(SigningKeyRow.park_id == park_id)
                         .order_by(SigningKeyRow.created_at)).all()
    return [{"key_id": r.key_id, "status": "revoked" if r.revoked_at else "retired" if r.retired_at else "active",
             "created_at": r.created_at.isoformat(), "retired_at": r.retired_at.isoformat() if r.retired_at else None,
             "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
             "revoked_reason": r.revoked_reason or None, "public_key_pem": r.public_pem} for r in rows]


def published_json(engine: Engine, park_id: str) -> bytes:
    return json.dumps({"park": park_id, "algorithm": "Ed25519", "key_id": "sha256 of the raw 32-byte public key",
                       "keys": published(engine, park_id)}, ensure_ascii=False, indent=2).encode()
