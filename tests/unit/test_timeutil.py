import pytest

from shared.timeutil import from_wire, is_real_wire_time


@pytest.mark.parametrize(
    ("text", "real"),
    [
        ("2026-11-22T03:04:05.123Z", True),
        ("2028-02-29T23:59:59.999Z", True),  # a leap day
        ("2026-02-29T10:00:00.000Z", False),
        ("2026-13-01T00:00:00.000Z", False),
        ("2026-04-31T00:00:00.000Z", False),
        ("0000-01-01T00:00:00.000Z", False),
        ("2026-11-22T24:00:00.000Z", False),
        ("2026-11-22T23:60:00.000Z", False),
        ("2026-11-22T23:59:60.000Z", False),
    ],
)
def test_real_wire_times_are_the_ones_from_wire_reads(text, real):
    assert is_real_wire_time(text) is real
    if real:
        assert from_wire(text).isoformat(timespec="milliseconds") == text.replace("Z", "+00:00")
    else:
        with pytest.raises(ValueError):
            from_wire(text)


def test_only_ascii_digits_fit_the_pattern():
    with pytest.raises(ValueError, match="expected a UTC time"):
        from_wire("２０２６-11-22T03:04:05.123Z")
