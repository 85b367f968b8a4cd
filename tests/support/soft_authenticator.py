"""A software WebAuthn authenticator for HTTP-level tests: it answers the creation and request
options a relying party sends (the L3 JSON serialization) the way a browser's
``PublicKeyCredential.toJSON()`` would, with an ES256 key of its own and an attestation of
format "none" (WebAuthn L3 §6.1 authenticator data, §8.7 "none", CTAP2 COSE keys).

It is a stand-in for the outside world (a browser and a security key), never for our code; the
browser tests drive Chromium's own virtual authenticator. Knobs make the responses a real
authenticator would never send, to see each refused: flags (UV, BE, BS), the counter, the origin,
the user handle, another key."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return cbor2.dumps(
        {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    )


@dataclass
class SoftCredential:
    """A discoverable credential the authenticator holds."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """``origin``: what the "browser" writes in clientDataJSON. ``backup_eligible``: a synced
    passkey (BE, and BS once backed up)."""

    origin: str
    backup_eligible: bool = False
    credentials: list[SoftCredential] = field(default_factory=list)

    def _flags(self, *, uv: bool, attested: bool, be: bool | None, bs: bool | None) -> int:
        flags = UP | (UV if uv else 0) | (AT if attested else 0)
        be = self.backup_eligible if be is None else be
        bs = be if bs is None else bs
        return flags | (BE if be else 0) | (BS if bs else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False}
        ).encode()

    def create(
        self, options: dict[str, Any], *, uv: bool = True, origin: str | None = None, counter: int = 0
    ) -> dict[str, Any]:
        """A registration response to creation options, as ``toJSON()`` spells it."""
        rp_id = options["rp"]["id"]
        credential = SoftCredential(
            credential_id=os.urandom(32),
            rp_id=rp_id,
            user_handle=from_b64url(options["user"]["id"]),
            key=ec.generate_private_key(ec.SECP256R1()),
            sign_count=counter,
        )
        self.credentials.append(credential)
        attested = (
            bytes(16)  # AAGUID: none
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + _cose_key(credential.key)
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(uv=uv, attested=True, be=None, bs=None)])
            + struct.pack(">I", counter)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        cid = b64url(credential.credential_id)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: SoftCredential | None = None,
        uv: bool = True,
        be: bool | None = None,
        bs: bool | None = None,
        origin: str | None = None,
        counter: int | None = None,
        user_handle: bytes | None = None,
        with_user_handle: bool = True,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> dict[str, Any]:
        """An assertion to request options by ``credential`` (else the first held for the RP
        ID). The counter goes up by one unless ``counter`` says what to send."""
        rp_id = options["rpId"]
        chosen = credential or next(c for c in self.credentials if c.rp_id == rp_id)
        chosen.sign_count = chosen.sign_count + 1 if counter is None else counter
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(uv=uv, attested=False, be=be, bs=bs)])
            + struct.pack(">I", chosen.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (key or chosen.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        cid = b64url(chosen.credential_id)
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if with_user_handle:
            response["userHandle"] = b64url(user_handle or chosen.user_handle)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }
