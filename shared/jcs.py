"""RFC 8785 JSON Canonicalization Scheme (JCS).

Custody events are hashed over their JCS form, so an auditor with any RFC 8785
library gets the same bytes. The common case (BMP keys, ordinary floats) goes
through msgspec's encoder, whose output equals JCS there, after a cheap check; anything unusual takes the
exact slow path below. Both are tested against an independent implementation.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec

_MAX_SAFE_INT = 2**53 - 1  # Number.MAX_SAFE_INTEGER
# msgspec writes floats in shortest round-trip form like ECMAScript, except that it
# keeps ".0" on integral values and uses exponents from 1e-6 and 1e16 on: those go slow.
_MIN_PLAIN_FLOAT = 1e-5
# keys (and Struct fields) sorted; RFC 8785 bytes for any value `prepare` has passed
encode_sorted = msgspec.json.Encoder(order="sorted").encode


MAX_DEPTH = 32  # nesting of objects and arrays that custody data may have


def i_json_problem(value: Any, path: str, max_depth: int = MAX_DEPTH) -> str | None:
    """A sentence naming the first member of a decoded JSON value that RFC 8785 cannot
    canonicalize exactly (its numbers are I-JSON's, RFC 7493: doubles), or that nests
    deeper than `max_depth`; None when all of it fits."""
    return _walk(value, path, max_depth)


def _too_deep(path: str) -> str:
    return f"{path} nests deeper than {MAX_DEPTH} levels of objects and arrays, the most an event may have"


def _walk(v: Any, path: str, depth: int) -> str | None:
    t = type(v)
    if t is dict:
        if depth <= 0:
            return _too_deep(path)
        for k, item in v.items():
            if type(item) is not str and (problem := _walk(item, f"{path}.{k}", depth - 1)):
                return problem
        return None
    if t is list:
        if depth <= 0:
            return _too_deep(path)
        for i, item in enumerate(v):
            if type(item) is not str and (problem := _walk(item, f"{path}[{i}]", depth - 1)):
                return problem
        return None
    if t is int and not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
        return (
            f"{path} is {v}, beyond ±(2^53 − 1): RFC 8785 hashes I-JSON numbers, which a "
            "double holds exactly; send it as a string"
        )
    if t is float and not math.isfinite(v):
        return f"{path} is not a finite number (RFC 8785 has no Infinity or NaN)"
    return None


class NotPlain(Exception):
    """The value needs the general path: msgspec cannot be made to write it as RFC 8785 does."""


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    try:
        return encode_sorted(prepare(value))
    except NotPlain:
        return _serialize(value).encode("utf-8")


def prepare(v: Any) -> Any:
    """`v` as msgspec's key-sorted encoder must see it to write its RFC 8785 form: `v`
    itself, or a copy with integral floats as ints. Raises NotPlain for what it cannot
    write so (tiny or huge floats, unsafe integers, keys beyond the BMP)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is dict:
        out = None
        for k, item in v.items():
            if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                raise NotPlain  # UTF-16 ordering differs from code-point ordering beyond the BMP
            if type(item) is str:  # the common case, without a call
                continue
            new = prepare(item)
            if new is not item:
                if out is None:
                    out = dict(v)
                out[k] = new
        return v if out is None else out
    if t is list or t is tuple:
        if t is list and all(type(i) is str for i in v):
            return v
        items = [prepare(i) for i in v]
        return v if t is list and all(a is b for a, b in zip(items, v, strict=True)) else items
    if t is int:
        if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
            return v
        raise NotPlain
    if t is float:
        if v.is_integer():
            if abs(v) < _MAX_SAFE_INT:
                return int(v)
            raise NotPlain
        if abs(v) < _MIN_PLAIN_FLOAT or not math.isfinite(v):
            raise NotPlain
        return v
    raise NotPlain


def _serialize(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        if abs(v) > _MAX_SAFE_INT:
            raise ValueError(f"integer {v} cannot be represented exactly in JSON (RFC 8785 §3.2.2.3)")
        return str(v)
    if isinstance(v, float):
        return es6_number(v)
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, got {type(k).__name__}")
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_serialize(k) + ":" + _serialize(v[k]) for k in keys) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_serialize(i) for i in v) + "]"
    raise TypeError(f"{type(v).__name__} is not a JSON value")


def es6_number(x: float) -> str:
    """ECMAScript Number.prototype.toString for a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError("NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es6_number(-x)
    mantissa, _, exp = repr(x).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    leading_zeros = len(all_digits) - len(all_digits.lstrip("0"))
    # x = 0.DIGITS × 10**n
    n = len(int_part) - leading_zeros + int(exp or 0)
    digits = all_digits.strip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{sign}{abs(e)}"
