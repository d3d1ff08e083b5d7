import hashlib
import uuid

import msgspec
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import labels
from shared.crypto import SigningKey
from shared.events import (
    CustodyEvent,
    EventIntegrityError,
    compute_hash,
    new_event_id,
    sign_event,
    verify_event,
)
from tests.unit.json_strategies import json_values

KEY = SigningKey.generate()


def make_event(**over):
    fields = dict(
        id=new_event_id(),
        shipment="1234567890123",
        type="picked_up",
        occurred_at="2026-11-22T03:04:05.123Z",
        actor="courier:42",
        counterparty={"name": "Nguyễn Văn A", "role": "citizen", "id_last4": "1234"},
        location={
            "lat": 13.98,
            "lon": 108.0,
            "accuracy_m": 12.0,
            "fix_at": "2026-11-22T03:04:01.000Z",
        },
        attachments={"signature": "ab" * 32, "photos": []},
        data={"components": ["Tờ khai", "CCCD bản sao"], "fee_vnd": 50000},
        prev=None,
    )
    fields.update(over)
    return sign_event(KEY, **fields)


def test_hash_is_sha256_of_rfc8785_without_hash_and_sig():
    ev = make_event()
    wire = msgspec.json.decode(msgspec.json.encode(ev))
    body = {k: v for k, v in wire.items() if k not in ("hash", "sig")}
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == ev.hash
    verify_event(ev)


def test_uuid7_ids_sort_by_time():
    a, b = new_event_id(1_700_000_000_000), new_event_id(1_700_000_000_001)
    assert uuid.UUID(a).version == 7 and a < b


def _mutations():
    return st.sampled_from(
        [
            ("shipment", "1234567890124"),
            ("type", "delivered"),
            ("occurred_at", "2026-11-22T03:04:05.124Z"),
            ("actor", "courier:43"),
            ("counterparty", None),
            ("counterparty.name", "Nguyễn Văn B"),
            ("counterparty.id_last4", "1235"),
            ("location", None),
            ("location.lat", 13.981),
            ("location.fix_at", "2026-11-22T03:04:02.000Z"),
            ("attachments.signature", "cd" * 32),
            ("attachments.photos", ["ef" * 32]),
            ("data.fee_vnd", 5000),
            ("data.components", ["Tờ khai"]),
            ("prev", "00" * 32),
            ("id", new_event_id()),
            ("v", 2),
        ]
    )


@settings(max_examples=60)
@given(_mutations())
def test_changing_any_field_breaks_verification(mutation):
    ev = make_event()
    wire = msgspec.to_builtins(ev)
    path, value = mutation
    target = wire
    *parents, leaf = path.split(".")
    for p in parents:
        target = target[p]
    target[leaf] = value
    if path == "v":
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(wire, CustodyEvent)
        return
    tampered = msgspec.convert(wire, CustodyEvent)
    with pytest.raises(EventIntegrityError, match="hash"):
        verify_event(tampered)


@given(st.binary(min_size=64, max_size=64))
def test_a_forged_signature_with_a_correct_hash_fails(sig):
    from shared.crypto import b64url

    ev = make_event()
    forged = msgspec.structs.replace(ev, sig=b64url(sig))
    with pytest.raises(EventIntegrityError, match="signature"):
        verify_event(forged)


def test_another_key_does_not_verify():
    ev = make_event()
    with pytest.raises(EventIntegrityError):
        verify_event(ev, SigningKey.generate().public_key_b64)


def test_missing_and_null_optional_fields_hash_differently():
    a = make_event(counterparty={"name": "A", "role": "clerk"})
    wire = msgspec.to_builtins(a)
    assert "id_last4" not in wire["counterparty"]
    verify_event(msgspec.convert(wire, CustodyEvent))
    wire["counterparty"]["id_last4"] = None
    with pytest.raises(EventIntegrityError):
        verify_event(msgspec.convert(wire, CustodyEvent))


def test_label_url_roundtrip_and_forgery():
    from shared import codes

    code = codes.new_code()
    url = labels.label_url("https://hoso.example.vn/", code, KEY)
    assert url.startswith(f"https://hoso.example.vn/t/{code}?s=")
    got_code, sig = labels.parse_label_url(url)
    assert got_code == code
    assert labels.is_authentic(code, sig, [KEY.public_key_b64])
    assert not labels.is_authentic(code, sig, [SigningKey.generate().public_key_b64])
    other = codes.new_code()
    assert not labels.is_authentic(other, sig, [KEY.public_key_b64])
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert not labels.is_authentic(code, flipped, [KEY.public_key_b64])
    assert not labels.is_authentic(code, None, [KEY.public_key_b64])
    assert not labels.is_authentic(code, "%%%", [KEY.public_key_b64])
    assert labels.parse_label_url(codes.group(code)) == (code, None)


_event_data_values = json_values(
    keys=st.text() | st.sampled_from(["hash", "sig", "prev", "device"]), max_size=4, max_leaves=20
)


def _rfc8785_hash(ev: CustodyEvent) -> str:
    body = msgspec.to_builtins(ev)
    del body["hash"], body["sig"]
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


@settings(max_examples=300)
@given(
    data=st.dictionaries(st.text() | st.sampled_from(["hash", "sig"]), _event_data_values, max_size=5),
    lat=st.floats(min_value=-90, max_value=90),
    lon=st.floats(min_value=-180, max_value=180),
    accuracy=st.none() | st.floats(min_value=0, allow_infinity=False),
    name=st.text(min_size=1, max_size=30) | st.just('x","hash":"' + "ab" * 32 + '"'),
    user_id=st.none() | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
    hash_=st.sampled_from(["ab" * 32, 'a"b', "\\", ""]),
    sig=st.sampled_from(["c2ln", 'a","sig":"b', ""]),
)
def test_the_fast_canonical_hash_is_rfc8785(data, lat, lon, accuracy, name, user_id, hash_, sig):
    """compute_hash cuts hash and sig out of msgspec's sorted encoding when it can: it must
    agree with an independent RFC 8785 implementation on every event, odd ones included
    (hash and sig as `CustodyEvent(...)` accepts them unchecked, keys named like members)."""
    cp = {"name": name, "role": "courier"}
    if user_id is not None:
        cp["user_id"] = user_id
    ev = make_event(
        data=data,
        counterparty=cp,
        location={"lat": lat, "lon": lon, "accuracy_m": accuracy, "fix_at": "2026-11-22T03:04:01.000Z"},
    )
    odd = msgspec.structs.replace(ev, hash=hash_, sig=sig)
    assert compute_hash(ev) == _rfc8785_hash(ev) == ev.hash
    assert compute_hash(odd) == _rfc8785_hash(odd)


def test_an_integer_json_cannot_carry_exactly_is_refused_not_hashed():
    ev = make_event(counterparty={"name": "A", "role": "courier", "user_id": 7})
    big = msgspec.structs.replace(ev, counterparty=msgspec.structs.replace(ev.counterparty, user_id=2**53))
    with pytest.raises(ValueError, match="cannot be represented exactly"):
        compute_hash(big)


PLAIN_LOCATION = {"lat": 13.5, "lon": 108.5, "accuracy_m": 8.5, "fix_at": "2026-11-22T03:04:01.000Z"}


def test_members_named_hash_and_sig_inside_data_stay_in_the_hash():
    # the fast path (no integral floats), with the event's own values nested under those names
    inner = {"hash": "ab" * 32, "sig": "c2ln"}
    ev = make_event(data={"a": inner, **inner}, location=PLAIN_LOCATION)
    odd = msgspec.structs.replace(ev, hash="ab" * 32, sig="c2ln")
    assert compute_hash(ev) == _rfc8785_hash(ev) == ev.hash
    assert compute_hash(odd) == _rfc8785_hash(odd)
