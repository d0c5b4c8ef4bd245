"""Delivery OTPs: derivation, sealing for the notification system, hashing and matching."""

from __future__ import annotations

import pytest

from streams.domain.orders import otp

SECRET = "a1" * 32  # 32 bytes as hex, the form MILESTREAM_OTP_KEY takes
KEY = otp.key_bytes(SECRET)
OTHER_KEY = otp.key_bytes("b2" * 32)


def test_issued_otp_opens_with_the_shared_key_to_the_derived_six_digit_code() -> None:
    issued = otp.issue(KEY, "ord-1", "evt-out-1")
    code = otp.open_sealed(KEY, issued.sealed).decode()
    assert code == otp.derive_otp(KEY, "ord-1", "evt-out-1")
    assert len(code) == 6 and code.isdigit()
    assert issued.hash == otp.hash_otp(code, issued.salt)
    assert code.encode() not in issued.sealed


def test_open_sealed_with_a_wrong_key_raises() -> None:
    issued = otp.issue(KEY, "ord-1", "evt-out-1")
    with pytest.raises(ValueError, match="integrity"):
        otp.open_sealed(OTHER_KEY, issued.sealed)


@pytest.mark.parametrize("position", [0, 15, 16, 18, -1, -16])
def test_open_sealed_with_a_flipped_byte_raises(position: int) -> None:
    sealed = bytearray(otp.issue(KEY, "ord-1", "evt-out-1").sealed)
    sealed[position] ^= 0x01
    with pytest.raises(ValueError):
        otp.open_sealed(KEY, bytes(sealed))


def test_open_sealed_rejects_a_truncated_seal() -> None:
    sealed = otp.issue(KEY, "ord-1", "evt-out-1").sealed
    with pytest.raises(ValueError, match="too short"):
        otp.open_sealed(KEY, sealed[:31])
    with pytest.raises(ValueError):
        otp.open_sealed(KEY, sealed[:-1])


def test_seal_round_trips_arbitrary_plaintext() -> None:
    nonce = bytes(range(16))
    for plaintext in (b"", b"1", b"123456", b"x" * 100):
        assert otp.open_sealed(KEY, otp.seal(KEY, plaintext, nonce)) == plaintext


def test_derive_otp_is_deterministic_per_key_order_and_source() -> None:
    assert otp.derive_otp(KEY, "ord-1", "evt-1") == otp.derive_otp(KEY, "ord-1", "evt-1")
    assert otp.issue(KEY, "ord-1", "evt-1") == otp.issue(KEY, "ord-1", "evt-1")


def test_derive_otp_differs_across_sources_orders_and_keys() -> None:
    base = otp.derive_otp(KEY, "ord-1", "evt-1")
    assert otp.derive_otp(KEY, "ord-1", "evt-2") != base
    assert otp.derive_otp(KEY, "ord-2", "evt-1") != base
    assert otp.derive_otp(OTHER_KEY, "ord-1", "evt-1") != base
    codes = {otp.derive_otp(KEY, "ord-1", f"evt-{i}") for i in range(50)}
    assert len(codes) >= 45  # spread, not a constant


def test_derive_otp_honours_the_digit_count_with_leading_zeros() -> None:
    codes = [otp.derive_otp(KEY, "ord-1", f"evt-{i}", digits=4) for i in range(200)]
    assert all(len(c) == 4 and c.isdigit() for c in codes)
    assert any(c.startswith("0") for c in codes)


def test_issue_salt_and_seal_differ_across_sources() -> None:
    one, two = otp.issue(KEY, "ord-1", "evt-1"), otp.issue(KEY, "ord-1", "evt-2")
    assert one.salt != two.salt
    assert one.sealed[:16] != two.sealed[:16]  # nonce
    assert len(one.salt) == 16


def test_hash_otp_depends_on_code_and_salt() -> None:
    salt = b"s" * 16
    assert otp.hash_otp("123456", salt) == otp.hash_otp("123456", salt)
    assert otp.hash_otp("123456", salt) != otp.hash_otp("123457", salt)
    assert otp.hash_otp("123456", salt) != otp.hash_otp("123456", b"t" * 16)


def test_matches_is_false_for_none_and_for_a_different_hash() -> None:
    stored = otp.hash_otp("123456", b"s" * 16)
    assert otp.matches(stored, stored) is True
    assert otp.matches(None, stored) is False
    assert otp.matches(otp.hash_otp("654321", b"s" * 16), stored) is False
    assert otp.matches(b"", stored) is False


def test_key_bytes_refuses_an_empty_secret_saying_how_to_make_one() -> None:
    with pytest.raises(ValueError, match="secrets.token_hex"):
        otp.key_bytes("")


@pytest.mark.parametrize("secret", [
    "unit-test-otp-key",  # a passphrase: guessable offline from any issued tag
    "ab" * 31,  # 31 bytes of hex
    "q" * 42,  # 31 bytes of base64url
    "correct horse battery staple correct horse battery staple",  # not an encoding at all
    "a" * 65,  # odd number of hex digits
])
def test_key_bytes_refuses_secrets_shorter_than_32_random_bytes(secret: str) -> None:
    with pytest.raises(ValueError, match="OTP key") as info:
        otp.key_bytes(secret)
    assert "secrets.token_hex(32)" in str(info.value)


def test_key_bytes_accepts_hex_and_base64url_of_32_bytes_and_reads_the_same_bytes() -> None:
    import base64
    import secrets

    raw = secrets.token_bytes(32)
    as_hex, as_b64 = raw.hex(), base64.urlsafe_b64encode(raw).decode()
    assert otp.secret_bytes(as_hex) == otp.secret_bytes(as_hex.upper()) == raw
    assert otp.secret_bytes(as_b64) == otp.secret_bytes(as_b64.rstrip("=")) == raw
    assert otp.key_bytes(as_hex) == otp.key_bytes(as_b64)
    assert len(otp.key_bytes(secrets.token_hex(64))) == 32


def test_working_key_is_hkdf_of_the_secret_not_the_secret_or_its_plain_hash() -> None:
    import hashlib

    raw = bytes.fromhex(SECRET)
    assert KEY == otp.hkdf_sha256(raw, otp.KDF_INFO)
    assert KEY not in (raw, hashlib.sha256(raw).digest(), hashlib.sha256(SECRET.encode()).digest())
    assert otp.hkdf_sha256(raw, b"another use") != KEY  # domain separated


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    okm = otp.hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42,
                          salt=bytes.fromhex("000102030405060708090a0b0c"))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")
