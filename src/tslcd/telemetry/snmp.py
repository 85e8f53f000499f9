"""SNMP access on gufo_snmp (a Rust BER codec): credentials, addresses, one session per device.

Only GET is used on the hot path: the registry knows every polled ifIndex, so one GET names exactly the
instances wanted and the agent never walks rows nobody asked for.
"""

import ipaddress
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from gufo.snmp import (Aes128Key, Aes192Key, Aes256Key, DesKey, Md5Key, Sha1Key, Sha224Key, Sha256Key, Sha384Key,
                       Sha512Key, SnmpAuthError, SnmpDecodeError, SnmpEncodeError, SnmpError, SnmpVersion, User)
from gufo.snmp.aio import SnmpSession
from gufo.snmp.user import KeyType
from tslcd.core.net import parse_host_port

DEFAULT_PORT = 161
# gufo sends the engine time of the agent's last message: the agent refuses it once 150 s old (RFC 3414).
V3_RESYNC_AFTER_S = 120.0

_AUTH_KEYS = {"MD5": Md5Key, "SHA": Sha1Key, "SHA1": Sha1Key, "SHA224": Sha224Key, "SHA256": Sha256Key,
              "SHA384": Sha384Key, "SHA512": Sha512Key}
_PRIV_KEYS = {"DES": DesKey, "AES": Aes128Key, "AES128": Aes128Key, "AES192": Aes192Key, "AES256": Aes256Key}
_VERSIONS = {"v1": SnmpVersion.v1, "v2c": SnmpVersion.v2c, "v3": SnmpVersion.v3}


class SnmpFailure(Exception):
    """A device gave no usable answer; the message names the cause and is safe to log (it never holds a secret)."""


class RequestTooLarge(Exception):
    """The request or its answer does not fit one message: ask for fewer objects at a time."""


@dataclass(frozen=True, slots=True)
class Credential:
    """How to talk to a device; the secret fields never appear in repr() and so never in a log or traceback."""

    version: str
    community: str = field(default="", repr=False)
    username: str = ""
    auth_protocol: str = ""
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = ""
    priv_key: str = field(default="", repr=False)

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> "Credential":
        """Build from `registry.service.snmp_secret()`; unknown protocols are refused here, not on the wire."""
        cred = cls(version=secret["version"], community=secret.get("community") or "",
                   username=secret.get("username") or "", auth_protocol=_norm(secret.get("auth_protocol")),
                   auth_key=secret.get("auth_key") or "", priv_protocol=_norm(secret.get("priv_protocol")),
                   priv_key=secret.get("priv_key") or "")
        if cred.version not in _VERSIONS:
            raise ValueError(f"unknown SNMP version {cred.version!r}")
        if cred.auth_protocol and cred.auth_protocol not in _AUTH_KEYS:
            raise ValueError(f"unknown SNMPv3 auth protocol {cred.auth_protocol!r}")
        if cred.priv_protocol and cred.priv_protocol not in _PRIV_KEYS:
            raise ValueError(f"unknown SNMPv3 privacy protocol {cred.priv_protocol!r}")
        return cred

    @property
    def wide_counters(self) -> bool:
        """SNMPv1 cannot carry Counter64, so v1 devices are read with the 32-bit columns."""
        return self.version != "v1"


def _norm(protocol: str | None) -> str:
    return (protocol or "").upper().replace("-", "").replace("_", "")


def parse_address(mgmt_address: str) -> tuple[str, int]:
    """Split "host", "host:port", "[v6]:port" or a bare IPv6 address into (host, port); ValueError if malformed."""
    return parse_host_port(mgmt_address, DEFAULT_PORT)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1024)
def v3_user(cred: Credential) -> User:
    """A gufo user with master keys: hashing a password costs a megabyte of SHA, so it is done once per credential."""
    auth_cls = _AUTH_KEYS.get(cred.auth_protocol) if cred.auth_key else None
    auth = priv = None
    if auth_cls:
        auth = auth_cls(auth_cls.get_master_key(cred.auth_key.encode()), key_type=KeyType.Master)
        priv_cls = _PRIV_KEYS.get(cred.priv_protocol) if cred.priv_key else None
        if priv_cls:
            # RFC 3826: the privacy key is derived with the authentication hash.
            priv = priv_cls(auth_cls.get_master_key(cred.priv_key.encode()), key_type=KeyType.Master)
    return User(cred.username, auth_key=auth, priv_key=priv)


class DeviceSession:
    """One device's SNMP session, kept across cycles so that v3 engine discovery happens once, not every poll."""

    def __init__(self, host: str, port: int, cred: Credential, *, timeout: float, retries: int) -> None:
        self.timeout, self.retries = timeout, retries
        version = _VERSIONS[cred.version]
        if version is SnmpVersion.v3:
            self._session = SnmpSession(host, port, user=v3_user(cred), version=version, timeout=timeout)
        else:
            self._session = SnmpSession(host, port, community=cred.community, version=version, timeout=timeout)
        self._is_v3 = version is SnmpVersion.v3
        self._heard_at: float | None = None  # v3: when we last learned the engine's boots and time

    async def get(self, oids: list[str]) -> dict[str, Any]:
        """GET the OIDs, retrying on silence; absent instances are missing from the answer.

        Raises SnmpFailure when the device gives no usable answer, RequestTooLarge when the message is too big.
        """
        tries, attempt = 1 + self.retries, 0
        while attempt < tries:
            attempt += 1
            sync = self._is_v3 and (self._heard_at is None or time.monotonic() - self._heard_at > V3_RESYNC_AFTER_S)
            try:
                if sync:  # engine discovery, or its time before the agent's window closes on us
                    await self._session.refresh()
                answer = await self._session.get_many(oids)
            except TimeoutError as exc:
                if "refused" in str(exc.__cause__ or ""):
                    raise SnmpFailure("port unreachable (nothing listens there)") from None
                self._heard_at = None  # a v3 agent that rebooted ignores us until we re-sync
                continue
            except SnmpAuthError:
                if self._is_v3 and not sync:  # a Report on a stale engine time, not wrong keys: re-sync once
                    self._heard_at, attempt = None, attempt - 1
                    continue
                raise SnmpFailure("SNMPv3 authentication refused (unknown user or wrong key)") from None
            except (SnmpEncodeError, SnmpDecodeError):
                raise RequestTooLarge from None
            except SnmpError as exc:
                raise SnmpFailure(f"SNMP error: {type(exc).__name__}") from None
            except OSError as exc:
                raise SnmpFailure(f"network error: {exc.strerror or type(exc).__name__}") from None
            self._heard_at = time.monotonic()
            return answer
        raise SnmpFailure(f"no answer after {tries} tries of {self.timeout:g} s")
