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
