"""Delivery OTPs: derive, seal for the notification system, hash, verify. Pure.

The OTP is derived from the secret key and the event that sent the order out for delivery, so
reprocessing that event after a crash yields the same OTP. It is never stored or logged in
clear: the order state keeps a salted PBKDF2 hash; the notification event carries it sealed
(HMAC-SHA256 keystream + tag) for the customer-notification system, which shares the key; the
rider app sends back only the salted hash of what the customer told the rider.

The secret is at least 32 random bytes (hex or base64url): a passphrase could be guessed offline
from any issued tag. The working key is derived from it with HKDF-SHA256 under a label of its
own, so the same secret could key something else without the two uses ever sharing a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
from dataclasses import dataclass

PBKDF2_ITERATIONS = 20_000
_NONCE = 16
_TAG = 16
MIN_SECRET_BYTES = 32
KDF_INFO = b"milestream/delivery-otp/v1"
_BASE64URL = frozenset(string.ascii_letters + string.digits + "-_")
MAKE_ONE = 'python -c "import secrets; print(secrets.token_hex(32))"'


def secret_bytes(secret: str) -> bytes:
    """The random bytes a key string carries: hex (64+ digits) or base64url (43+ characters).
    Raises ValueError saying how to make a good one."""
    text = secret.strip()
    if not text:
        raise ValueError(f"the OTP key is empty; make one with: {MAKE_ONE}")
    try:
        if all(c in string.hexdigits for c in text):
            raw = bytes.fromhex(text)
        elif all(c in _BASE64URL for c in text.rstrip("=")):
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            raise ValueError
    except (ValueError, binascii.Error):
        raise ValueError(f"the OTP key is neither hex nor base64url; make one with: {MAKE_ONE}") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"the OTP key holds {len(raw)} bytes, fewer than the {MIN_SECRET_BYTES} random bytes it "
                         f"needs (64 hex digits or 43 base64url characters); make one with: {MAKE_ONE}")
    return raw


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32, salt: bytes = b"") -> bytes:
    """HKDF (RFC 5869) with SHA-256: extract, then expand under ``info``."""
    prk = hmac.new(salt or b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def key_bytes(secret: str) -> bytes:
    """The OTP working key from the shared secret (see :func:`secret_bytes` for its form)."""
    return hkdf_sha256(secret_bytes(secret), KDF_INFO)


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
