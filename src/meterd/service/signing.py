"""Entitlement signing keys: ES256 (P-256) key versions, rotation, JWKS, and signing RegisterUsage JWTs.

Keys are server-wide (GLOBAL ``aws-signing-key`` objects keyed by zero-padded version); the private key is
sealed with the server's secret key; the public keys are published as a JWKS so software can verify offline.
Version 1 is created on first use. Rotating adds version n+1 and stamps the older ones with ``rotated_at``;
old versions still sign (RegisterUsage then reports PublicKeyRotationTimestamp) and stay in the JWKS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from meterd.core.errors import StorageError
from meterd.service.sealing import SealerSource
from meterd.storage.base import GLOBAL, Store

KIND = "aws-signing-key"
ALGORITHM = "ES256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    version: int
    created_at: int
    rotated_at: int | None
    public_jwk: dict[str, str]
    sealed_private: str

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.created_at,
            "rotated_at": self.rotated_at,
            "public_jwk": self.public_jwk,
            "sealed_private": self.sealed_private,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        rotated = data.get("rotated_at")
        return cls(
            int(data["version"]),
            int(data["created_at"]),
            None if rotated is None else int(rotated),
            dict(data["public_jwk"]),
            data["sealed_private"],
        )


def public_jwk(key: ec.EllipticCurvePublicKey, version: int) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
        "kid": str(version),
        "use": "sig",
        "alg": ALGORITHM,
    }


def _key_name(version: int) -> str:
    return f"{version:010d}"


class SigningKeys:
    """The versions of the entitlement signing key."""

    def __init__(self, store: Store, sealers: SealerSource, clock: Callable[[], int]) -> None:
        self.store = store
        self.sealers = sealers
        self.clock = clock
        self._private: dict[int, ec.EllipticCurvePrivateKey] = {}

    async def versions(self) -> list[SigningKey]:
        """Every version, oldest first; version 1 is created when there is none."""
        found = [SigningKey.from_json(body) for _, body in await self.store.list_objects(GLOBAL, KIND)]
        if not found:
            await self._create(1)
            found = [SigningKey.from_json(body) for _, body in await self.store.list_objects(GLOBAL, KIND)]
        return sorted(found, key=lambda k: k.version)

    async def get(self, version: int) -> SigningKey | None:
        if version == 1:
            await self.versions()
        body = await self.store.get_object(GLOBAL, KIND, _key_name(version))
        return None if body is None else SigningKey.from_json(body)

    async def _create(self, version: int) -> bool:
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        sealed = (await self.sealers.get()).seal(pem)
        key = SigningKey(version, self.clock(), None, public_jwk(private.public_key(), version), sealed)
        return await self.store.put_object(GLOBAL, KIND, _key_name(version), key.as_json(), only_if_absent=True)

    async def rotate(self) -> SigningKey:
        """Add the next version and mark every older one rotated now."""
        for _ in range(5):
            current = (await self.versions())[-1]
            if await self._create(current.version + 1):
                now = self.clock()
                for old in await self.versions():
                    if old.version <= current.version and old.rotated_at is None:
                        body = {**old.as_json(), "rotated_at": now}
                        await self.store.put_object(GLOBAL, KIND, _key_name(old.version), body)
                created = await self.get(current.version + 1)
                if created is not None:
                    return created
        raise StorageError("could not rotate the signing key")

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in await self.versions()]}

    async def _private_key(self, key: SigningKey) -> ec.EllipticCurvePrivateKey:
        if key.version not in self._private:
            pem = (await self.sealers.get()).unseal(key.sealed_private)
            loaded = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise StorageError("the signing key is not an EC key")
            self._private[key.version] = loaded
        return self._private[key.version]

    async def sign(self, key: SigningKey, claims: dict[str, Any]) -> str:
        """A compact JWS (JWT) of ``claims`` signed with ``key`` (ES256, kid = version)."""
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": str(key.version)}
        signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        der = (await self._private_key(key)).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
