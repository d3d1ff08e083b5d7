"""shared/pagecheck.py: the page checks the courier app and the server both run."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shared import pagecheck
from shared.pages import MIN_MEAN_LUMINANCE, MIN_PAGE_SIDE, MIN_SHARPNESS
from tests.pages_fixture import blurred, dark, jpeg, page_image


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), "white").save(out, "PNG")
    return out.getvalue()


def test_sharp_blurred_and_dark_pages():
    ok = pagecheck.check_page(1, jpeg(page_image(1)))
    assert ok.ok and ok.sharpness >= MIN_SHARPNESS and (ok.width, ok.height) == (1600, 1200)
    bad = pagecheck.check_page(2, jpeg(blurred(page_image(2))))
    assert not bad.ok and bad.sharpness < MIN_SHARPNESS
    assert f"Trang 2 bị mờ (độ nét {bad.sharpness}, cần ≥ {MIN_SHARPNESS})" in bad.problems[0]
    d = pagecheck.check_page(3, jpeg(dark(page_image(3))))
    assert d.luminance < MIN_MEAN_LUMINANCE and len(d.problems) == 1  # one reason, not two


@pytest.mark.parametrize("size", [(60, 40), (99, 500), (500, 1), (1, 1)])
def test_a_page_too_small_to_judge_is_refused_with_a_sentence(size):
    with pytest.raises(pagecheck.PageUnreadable, match=rf"at least {MIN_PAGE_SIDE} on each side"):
        pagecheck.check_page(1, _png(*size))


def test_the_smallest_page_judged_has_finite_scores():
    r = pagecheck.check_page(1, _png(MIN_PAGE_SIDE, MIN_PAGE_SIDE))
    assert r.sharpness == 0 and r.luminance == 255  # a white square: blurred, never NaN


def test_not_an_image_and_a_gif():
    with pytest.raises(pagecheck.PageUnreadable, match="cannot be decoded"):
        pagecheck.check_page(1, b"hello")
    gif = io.BytesIO()
    Image.new("RGB", (200, 200)).save(gif, "GIF")
    with pytest.raises(pagecheck.PageUnreadable, match="only JPEG or PNG"):
        pagecheck.check_page(1, gif.getvalue())


def test_thumbnail_is_a_small_upright_jpeg():
    small = pagecheck.thumbnail(jpeg(page_image(1)))
    img = Image.open(io.BytesIO(small))
    assert img.format == "JPEG" and max(img.size) == pagecheck.THUMB_SIDE and img.size[0] > img.size[1]
