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


def test_every_topic_and_counterparty_role_has_a_label_in_both_languages():
    import typing

    from server.outbox.messages import TOPICS
    from server.outbox.repository import WEBHOOK_EVENTS
    from shared.events import CounterpartyRole
    from shared.i18n import LANGUAGES

    wanted = {f"party.{r}" for r in typing.get_args(CounterpartyRole)}
    wanted |= {f"outbox.topic.{x}" for x in (*TOPICS, *WEBHOOK_EVENTS)}
    wanted |= {"outbox.channel.citizen", "outbox.channel.webhook"}
    for lang in ("vi", "en"):
        assert wanted - set(LANGUAGES[lang]) == set(), lang


def test_numbers_are_written_as_each_language_writes_them():
    from shared.i18n import number, vnd

    assert number(9.7, 2, "vi") == "9,70" and number(9.7, 2, "en") == "9.70"
    assert number(44_865, None, "vi") == "44.865" and number(44_865, None, "en") == "44,865"
    assert number(1_234_567.25, None, "vi") == "1.234.567,25"
    assert number(0.5) == "0,5" and number(3.0) == "3" and number(0) == "0"
    assert number(-0.0001, 2, "vi") == "0,00" and number(-2.5, 1, "en") == "-2.5"
    assert number(None) == "—"
    assert vnd(1_284_000) == "1.284.000 ₫" and vnd(-5_000) == "−5.000 ₫" and vnd(0) == "0 ₫"


def test_charts_write_numbers_as_the_page_language_does():
    from server.reports.charts import bar_chart, gauge

    assert "4,25 giờ" in bar_chart("Giờ", [("Nhận → quầy", 4.25)], unit=" giờ")
    assert "4.25 h" in bar_chart("Hours", [("Door to desk", 4.25)], unit=" h", lang="en")
    assert ": 66,7 %" in gauge("Tỷ lệ", 66.7) and ": 66.7 %" in gauge("Rate", 66.7, lang="en")
    assert ": —" in gauge("Tỷ lệ", None)
