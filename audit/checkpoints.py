"""Signed checkpoints of the audit chains (README § Audit trail).

Anyone holding the database and the code can recompute a whole chain, so the chain alone proves little against an
insider. A checkpoint states a chain's head (seq, hash) at a moment, signed with an Ed25519 private key that the
database never holds (a file or the environment of the process that writes checkpoints), and is exported outside
the database as it is written (a JSON line in a file, a log line). Verification (`audit.services.verify_chain`)
then holds the stored events to the signed heads: a rewritten chain no longer hashes to them, a truncated one lacks
the seq they name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .models import AuditCheckpoint

logger = logging.getLogger("audit.checkpoint")

# The first key of the advisory lock that keeps two writers of one chain's checkpoint apart (the second is the
# chain's hashtext): any constant no other lock of the project uses.


class CheckpointKeyError(ImproperlyConfigured):
    """A checkpoint key is set but cannot be used (missing file, not an Ed25519 key)."""


# --- keys ------------------------------------------------------------------------------------------------------


def _private_key_from(data: bytes, where: str) -> Ed25519PrivateKey:
    """A PEM private key, the key's 32 raw bytes, or those bytes in base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise CheckpointKeyError(f"{where}: not a readable unencrypted PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointKeyError(f"{where}: a {type(key).__name__}, not an Ed25519 key")
        return key
    raw = data if len(data) == 32 else _base64(text, where)
    if len(raw) != 32:
        raise CheckpointKeyError(f"{where}: an Ed25519 private key is 32 bytes, not {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _base64(text: bytes | str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointKeyError(f"{where}: not base64 ({exc})") from exc


def signing_key() -> Ed25519PrivateKey | None:
    """The private key checkpoints are signed with: AUDIT_CHECKPOINT_KEY (base64 or PEM text), else the file
    AUDIT_CHECKPOINT_KEY_FILE; None when neither is set (checkpoints are then not written)."""
    if settings.AUDIT_CHECKPOINT_KEY:
        return _private_key_from(settings.AUDIT_CHECKPOINT_KEY.encode(), "AUDIT_CHECKPOINT_KEY")
    if settings.AUDIT_CHECKPOINT_KEY_FILE:
        path = Path(settings.AUDIT_CHECKPOINT_KEY_FILE)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointKeyError(f"AUDIT_CHECKPOINT_KEY_FILE: cannot read {path} ({exc.strerror})") from exc
        return _private_key_from(data, f"AUDIT_CHECKPOINT_KEY_FILE {path}")
    return None


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as AUDIT_CHECKPOINT_PUBLIC_KEYS takes it: its 32 raw bytes in base64."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A public key's fingerprint, kept beside each signature so a rotated key's checkpoints still verify."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """The public keys checkpoints are verified with, by key id: AUDIT_CHECKPOINT_PUBLIC_KEYS (retired keys
    stay listed after a rotation) and the signing key's own."""
    keys: dict[str, Ed25519PublicKey] = {}
    for text in settings.AUDIT_CHECKPOINT_PUBLIC_KEYS:
        raw = _base64(text.strip(), "AUDIT_CHECKPOINT_PUBLIC_KEYS")
        if len(raw) != 32:
            raise CheckpointKeyError(f"AUDIT_CHECKPOINT_PUBLIC_KEYS: an Ed25519 public key is 32 bytes, not {len(raw)}")
        public = Ed25519PublicKey.from_public_bytes(raw)
        keys[key_id(public)] = public
    private = signing_key()
    if private is not None:
        keys[key_id(private.public_key())] = private.public_key()
    return keys


def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """System check: a checkpoint key that is set must be usable (`manage.py check`, runserver, the deploy)."""
    try:
        verification_keys()
    except CheckpointKeyError as exc:
        return [checks.Error(str(exc), hint="manage.py audit_keygen PATH makes a key pair", id="audit.E001")]
    return []


# --- what is signed --------------------------------------------------------------------------------------------


def signed_text(*, chain: str, agency_code: str, seq: int, head_hash: str, at: datetime) -> bytes:
    """The bytes a checkpoint's signature covers: canonical JSON of its chain, agency, seq, head hash and time."""
    payload = {"v": 1, "chain": chain, "agency": agency_code, "seq": seq, "hash": head_hash, "at": at.isoformat()}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _text_of(checkpoint: AuditCheckpoint) -> bytes:
    return signed_text(chain=checkpoint.chain, agency_code=checkpoint.agency_code, seq=checkpoint.seq,
                       head_hash=checkpoint.head_hash, at=checkpoint.at)


def signature_problem(checkpoint: AuditCheckpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why the checkpoint's signature does not hold, or None when it does."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"the checkpoint at seq {checkpoint.seq} is signed by an unknown key ({checkpoint.key_id})"
    try:
        key.verify(base64.b64decode(checkpoint.signature), _text_of(checkpoint))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"the checkpoint at seq {checkpoint.seq} has a signature that does not verify (forged)"
    return None


def as_record(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as exported and logged: the signed fields, the key id and the signature."""
    return {"chain": checkpoint.chain, "agency": checkpoint.agency_code, "seq": checkpoint.seq,
            "hash": checkpoint.head_hash, "at": checkpoint.at.isoformat(), "key_id": checkpoint.key_id,
            "signature": checkpoint.signature}


def export(checkpoint: AuditCheckpoint) -> None:
    """One log line (logger "audit.checkpoint") and, with AUDIT_CHECKPOINT_EXPORT_FILE set, one JSON line
    appended to that file and flushed to disk."""
    line = json.dumps(as_record(checkpoint), sort_keys=True, separators=(",", ":"))
    logger.info("audit checkpoint %s", line)
    path = settings.AUDIT_CHECKPOINT_EXPORT_FILE
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
