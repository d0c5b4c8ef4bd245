"""Delivery OTPs: derive, seal for the notification system, hash, verify. Pure.

The OTP is derived from the secret key and the event that sent the order out for delivery, so
reprocessing that event after a crash yields the same OTP. It is never stored or logged in
clear: the order state keeps a salted PBKDF2 hash; the notification event carries it sealed
(HMAC-SHA256 keystream + tag) for the customer-notification system, which shares the key; the
rider app sends back only the salted hash of what the customer told the rider.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

PBKDF2_ITERATIONS = 20_000
_NONCE = 16
_TAG = 16


def key_bytes(secret: str) -> bytes:
    if not secret:
        raise ValueError("OTP key is empty: set MILESTREAM_OTP_KEY")
    return hashlib.sha256(secret.encode()).digest()


def _prf(key: bytes, label: str, data: bytes) -> bytes:
    return hmac.new(key, label.encode() + b"|" + data, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedOtp:
    salt: bytes
    hash: bytes
    sealed: bytes


def derive_otp(key: bytes, order_id: str, source_event_id: str, digits: int = 6) -> str:
    mac = _prf(key, "otp", f"{order_id}/{source_event_id}".encode())
    return str(int.from_bytes(mac[:8], "big") % 10**digits).zfill(digits)


def hash_otp(otp: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", otp.encode(), salt, PBKDF2_ITERATIONS)


def issue(key: bytes, order_id: str, source_event_id: str) -> IssuedOtp:
    otp = derive_otp(key, order_id, source_event_id)
    salt = _prf(key, "salt", f"{order_id}/{source_event_id}".encode())[:16]
    nonce = _prf(key, "nonce", f"{order_id}/{source_event_id}".encode())[:_NONCE]
    return IssuedOtp(salt=salt, hash=hash_otp(otp, salt), sealed=seal(key, otp.encode(), nonce))


def _keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += _prf(key, "enc", nonce + counter.to_bytes(4, "big"))
        counter += 1
    return out[:n]


def seal(key: bytes, plaintext: bytes, nonce: bytes) -> bytes:
    ct = bytes(a ^ b for a, b in zip(plaintext, _keystream(key, nonce, len(plaintext)), strict=True))
    return nonce + ct + _prf(key, "mac", nonce + ct)[:_TAG]


def open_sealed(key: bytes, sealed: bytes) -> bytes:
    """What the notification system does. Raises ValueError if the seal was tampered with."""
    if len(sealed) < _NONCE + _TAG:
        raise ValueError("sealed OTP is too short")
    nonce, ct, tag = sealed[:_NONCE], sealed[_NONCE:-_TAG], sealed[-_TAG:]
    if not hmac.compare_digest(tag, _prf(key, "mac", nonce + ct)[:_TAG]):
        raise ValueError("sealed OTP failed its integrity check (wrong key or tampered)")
    return bytes(a ^ b for a, b in zip(ct, _keystream(key, nonce, len(ct)), strict=True))


def matches(submitted_hash: bytes | None, stored_hash: bytes) -> bool:
    return submitted_hash is not None and hmac.compare_digest(submitted_hash, stored_hash)
