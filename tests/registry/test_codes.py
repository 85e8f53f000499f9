import pytest

from tslcd.core.config import get_settings
from tslcd.registry.codes import check_agency_code


@pytest.mark.parametrize("code", ["000.00.00.G22", "28.22.H17", "000.00.15.H51", "001.00.20.TT2", "000.00.00.k01",
                                  "H17", "22.H17"])
def test_real_shapes_are_accepted(code):
    assert check_agency_code(code).lower() == code.lower()


def test_level_one_letters_are_capitalised():
    assert check_agency_code(" 000.00.00.k01 ") == "000.00.00.K01"


@pytest.mark.parametrize("code,reason", [
    ("", "empty"),
    ("000.00.00.00.G22", "5 dot-separated groups; at most 4"),
    ("000..00.G22", "group 2 is empty"),
    ("000.00.00.G 22", "contains ' '"),
    ("000.00.đ0.G22", "contains 'đ'"),
    ("000.00.00.22", "the last group '22' (level 1, the top-level organisation) must be three characters"),
    ("000.00.00.GOVT", "the last group 'GOVT'"),
    ("000.00.00.G2", "the last group 'G2' (level 1, the top-level organisation) must be three characters"),
    ("000.00.00.TTT", "one or two letters then digits"),
    ("000.00.0X.H63", "group 3 '0X' (level 2) must be two digits"),
    ("0000.00.01.H63", "group 1 '0000' (level 4) must be three digits"),
    ("00.00.01.H63", "group 1 '00' (level 4) must be three digits"),
    ("000.0.01.H63", "group 2 '0' (level 3) must be two digits"),
    ("abc.def", "the last group 'def'"),
    ("vxp.saas.03", "the last group '03'"),
])
def test_refusals_say_exactly_why(code, reason):
    with pytest.raises(ValueError) as caught:
        check_agency_code(code)
    assert reason in str(caught.value)


def test_test_system_codes_need_their_prefix_allowed(monkeypatch):
    monkeypatch.setenv("TSLCD_AGENCY_TEST_CODE_PREFIXES", "vxp.")
    get_settings.cache_clear()
    try:
        assert check_agency_code("vxp.saas.03") == "vxp.saas.03"
        with pytest.raises(ValueError, match="at most 4"):
            check_agency_code("vxp.a.b.c.d")
        with pytest.raises(ValueError, match="the last group 'def'"):
            check_agency_code("abc.def")  # another prefix stays refused
    finally:
        monkeypatch.delenv("TSLCD_AGENCY_TEST_CODE_PREFIXES")
        get_settings.cache_clear()
