"""One i18n namespace is shared by the courier app, the citizen page and the console: a key
that means two things would silently show the wrong sentence on one of them."""

from shared.i18n import console, en, vi


def test_console_strings_never_redefine_app_strings():
    for app, web in ((vi.STRINGS, console.VI), (en.STRINGS, console.EN)):
        clashes = {k: (app[k], web[k]) for k in set(app) & set(web) if app[k] != web[k]}
        assert clashes == {}


def test_every_vietnamese_key_has_an_english_one():
    assert set(vi.STRINGS) - set(en.STRINGS) == set()
    assert set(console.VI) - set(console.EN) == set()
