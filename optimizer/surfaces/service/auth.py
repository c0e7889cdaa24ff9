"""API keys and tenants: who may call the service, and whose jobs a caller sees.

Keys are stored hashed (sha256), one ``tenant:sha256hex`` per line of a file (``--api-keys``) or
comma-separated in ``CHIPMIX_API_KEYS``; ``chipmix api-key TENANT`` makes a new key and prints
the line to store.  A caller sends ``Authorization: Bearer <key>``; each job belongs to the
tenant of the key that submitted it, and is invisible (404) to every other tenant.  Without keys
the service only starts with ``--no-auth`` on a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass, field

from optimizer.errors import FieldError, InputError

ENV_KEYS = "CHIPMIX_API_KEYS"
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):([0-9a-f]{64})$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(tenant: str) -> tuple[str, str]:
    """A new random key, and the line that stores it (hashed) for ``tenant``."""
    key = "cmx_" + secrets.token_urlsafe(32)
    return key, f"{tenant}:{hash_key(key)}"


@dataclass(frozen=True)
class ApiKeys:
    """sha256 of each key -> its tenant."""

    tenants: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, source: str) -> ApiKeys:
        """Lines (or comma-separated entries) ``tenant:sha256hex``; '#' starts a comment."""
        entries = [part.split("#", 1)[0].strip() for line in text.splitlines() for part in line.split(",")]
        errors, tenants = [], {}
        for number, entry in enumerate(entries, start=1):
            if not entry:
                continue
            match = _LINE.match(entry)
            if match is None:
                errors.append(FieldError(f"entry {number}", f"{entry[:20]!r}... is not tenant:sha256hex",
                                         "store the line chipmix api-key TENANT prints, never the key itself"))
            else:
                tenants[match.group(2)] = match.group(1)
        if errors:
            raise InputError(source, errors)
        return cls(tenants)

    def __bool__(self) -> bool:
        return bool(self.tenants)

    def tenant_of(self, authorization: str | None) -> str | None:
        """The tenant of an ``Authorization: Bearer <key>`` header, or None."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        digest = hash_key(authorization[7:].strip())
        found = None
        for stored, tenant in self.tenants.items():  # compare every one: no early exit to time
            if hmac.compare_digest(stored, digest):
                found = tenant
        return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(host: str) -> list[str]:
    """Host headers accepted when the operator names none: the loopback names, and the address
    the server binds to unless that is a wildcard (then only what --allowed-hosts says)."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    if host not in ("0.0.0.0", "::", "") and host not in names:
        names.append(host)
    return names
