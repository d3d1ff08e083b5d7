"""The one i18n lookup for the app and the web pages: Vietnamese first, English second.

`t("key", lang, **values)`; a key missing in English falls back to Vietnamese, and a
key missing everywhere is shown as itself so a gap is visible, never a crash.
"""

from __future__ import annotations

from . import console, counter, en, intake, outbox, shop, vi

DEFAULT = "vi"
LANGUAGES = {
    "vi": {**vi.STRINGS, **console.VI, **shop.VI, **intake.VI, **counter.VI, **outbox.VI},
    "en": {**en.STRINGS, **console.EN, **shop.EN, **intake.EN, **counter.EN, **outbox.EN},
}


def lang_or_default(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT


def t(key: str, lang: str | None = DEFAULT, /, **values: object) -> str:
    text = LANGUAGES[lang_or_default(lang)].get(key) or LANGUAGES[DEFAULT].get(key) or key
    return text.format(**values) if values else text


_VI_MARKS = str.maketrans(",.", ".,")  # thousands and decimal marks swap


def number(value: float | None, digits: int | None = None, lang: str | None = DEFAULT, /) -> str:
    """A number as people of the language write it: `1.234,5` in Vietnamese, `1,234.5` in
    English. `digits` decimals, or as few as the value needs when None; None is "—"."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}" if digits is not None else f"{value:,.6f}".rstrip("0").rstrip(".")
    if text.startswith("-") and not text.strip("-0.,"):  # -0.0001 to 2 digits is 0.00, not -0.00
        text = text[1:]
    if lang_or_default(lang) == "vi":
        text = text.translate(_VI_MARKS)
    return text


def vnd(amount: int) -> str:
    """1234000 → '1.234.000 ₫': whole đồng with the Vietnamese thousands separator, in
    every language (how amounts in đồng are printed on receipts and in the registers)."""
    sign = "−" if amount < 0 else ""
    return f"{sign}{abs(amount):,}".replace(",", ".") + " ₫"
