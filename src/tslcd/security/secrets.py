"""Encryption at rest for credentials the platform itself must use (SNMP communities and v3 keys)."""

import os

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tslcd.core.config import get_settings


def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tslcd credentials").derive(
        get_settings().secret_key.encode())


def seal(values: dict[str, str]) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key()).encrypt(nonce, orjson.dumps(values), b"tslcd")


def unseal(blob: bytes) -> dict[str, str]:
    return orjson.loads(AESGCM(_key()).decrypt(blob[:12], blob[12:], b"tslcd"))
