"""Secrets: which columns of a model are secret (declared once per model), and the keys derived from settings.

A model names its secret columns once, `__secret_columns__ = ("password_hash",)`; audit snapshots, exports,
responses and logs leave them out by asking `secret_columns`. The keys the platform itself needs (credentials at
rest, the audit chain's MAC key, the checkpoint signing key) are derived from settings and never stored in the
database.
"""

import os
from functools import lru_cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tslcd.core.config import get_settings


def secret_columns(model_or_obj: Any) -> frozenset[str]:
    """The column names a model (class or instance) declares secret, over its whole class hierarchy."""
    cls = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
    return _declared(cls)


@lru_cache(maxsize=None)
def _declared(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(klass.__dict__.get("__secret_columns__", ()))
    return frozenset(names)


_declared_cache: tuple[int, dict[str, frozenset[str]]] = (-1, {})


def declared_secrets() -> dict[str, frozenset[str]]:
    """Every mapped table with secret columns -> those columns (for scans of responses, exports and the audit log)."""
    global _declared_cache
    from tslcd.core.database import Base

    mappers = Base.registry.mappers
    if _declared_cache[0] != len(mappers):
        found: dict[str, frozenset[str]] = {}
        for mapper in mappers:
            cols = secret_columns(mapper.class_)
            if cols:
                found[mapper.local_table.name] = cols
        _declared_cache = (len(mappers), found)
    return _declared_cache[1]


def _derive(info: bytes, material: str | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        (material if material is not None else get_settings().secret_key).encode())


def _key() -> bytes:
    return _derive(b"tslcd credentials")


def audit_mac_key() -> bytes:
    """The audit chain's HMAC-SHA256 key: from TSLCD_AUDIT_KEY when set, otherwise from TSLCD_SECRET_KEY."""
    settings = get_settings()
    return _derive(b"tslcd audit chain v2", settings.audit_key or settings.secret_key)


def checkpoint_signing_key() -> Ed25519PrivateKey:
    """The Ed25519 key that signs audit checkpoints (derived like the MAC key, with its own info string)."""
    settings = get_settings()
    seed = _derive(b"tslcd audit checkpoints ed25519", settings.audit_key or settings.secret_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def checkpoint_public_key() -> Ed25519PublicKey:
    return checkpoint_signing_key().public_key()


def checkpoint_public_key_hex() -> str:
    """What an outside witness needs to check checkpoints (it cannot sign them)."""
    return checkpoint_public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def seal(values: dict[str, str]) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key()).encrypt(nonce, orjson.dumps(values), b"tslcd")


def unseal(blob: bytes) -> dict[str, str]:
    return orjson.loads(AESGCM(_key()).decrypt(blob[:12], blob[12:], b"tslcd"))
