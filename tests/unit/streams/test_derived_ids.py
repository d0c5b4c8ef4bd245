"""Derived ids are uuid5 of the source and purpose: the same input always gives the same id, which
is what lets a replay after a crash re-derive events that consumers recognise."""

import uuid

from streams.domain.ids import NAMESPACE, derived_id


def test_derived_ids_are_the_uuid5_of_source_and_purpose() -> None:
    for source, purpose in [("e-1", "otp-issued"), ("route-7/ord-3", "eta/9f1c"), ("", ""), ("ü/ß", "ünïcode")]:
        expected = uuid.uuid5(NAMESPACE, f"{source}/{purpose}")
        got = uuid.UUID(derived_id(source, purpose))
        assert got == expected and got.version == 5 and str(got) == derived_id(source, purpose)
    assert derived_id("a", "b") != derived_id("a", "c")
