"""Fields (lĩnh vực) and common procedures (thủ tục) offered on the register screen, and the
two-level map of provinces and communes in force since July 2025 (`vietnam-provinces`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

FIELDS: dict[str, list[str]] = {
    "Tư pháp - Hộ tịch": [
        "Đăng ký khai sinh",
        "Đăng ký kết hôn",
        "Đăng ký khai tử",
        "Cấp bản sao trích lục hộ tịch",
        "Cấp Phiếu lý lịch tư pháp",
        "Chứng thực bản sao từ bản chính",
    ],
    "Đất đai": [
        "Đăng ký biến động quyền sử dụng đất",
        "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
        "Đăng ký đất đai lần đầu",
    ],
    "Xây dựng": ["Cấp giấy phép xây dựng nhà ở riêng lẻ", "Điều chỉnh giấy phép xây dựng"],
    "Đăng ký kinh doanh": ["Đăng ký thành lập hộ kinh doanh", "Thay đổi nội dung đăng ký hộ kinh doanh"],
    "Lao động - Việc làm": ["Giải quyết hưởng trợ cấp thất nghiệp"],
    "Giao thông vận tải": ["Cấp đổi giấy phép lái xe", "Đăng ký xe"],
    "Bảo trợ xã hội": ["Trợ cấp xã hội hằng tháng", "Cấp thẻ bảo hiểm y tế cho người có công"],
    "Cư trú": ["Đăng ký thường trú", "Xác nhận thông tin về cư trú"],
}


@lru_cache(maxsize=1)
def provinces() -> list[dict[str, Any]]:
    """The 34 provinces and their communes and wards, sorted by name."""
    from vietnam_provinces import Province, VietNamDivisionType, Ward

    wards: dict[int, list[str]] = {}
    for w in Ward.iter_all():
        wards.setdefault(int(w.province_code), []).append(w.name)
    return sorted(
        (
            {
                "code": int(p.code),
                # "Tỉnh Gia Lai", as addresses are written; cities carry "Thành phố" in their name
                "name": f"Tỉnh {p.name}" if p.division_type == VietNamDivisionType.TINH else p.name,
                "sort": p.name.removeprefix("Thành phố "),
                "communes": sorted(wards.get(int(p.code), [])),
            }
            for p in Province.iter_all()
        ),
        key=lambda p: p["sort"],
    )


def province_names() -> set[str]:
    return {p["name"] for p in provinces()}


def communes_of(province: str) -> list[str]:
    return next((p["communes"] for p in provinces() if p["name"] == province), [])
