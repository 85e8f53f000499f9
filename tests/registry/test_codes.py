import pytest

from tslcd.registry.codes import check_agency_code


@pytest.mark.parametrize("code", ["000.00.00.G22", "28.22.H17", "000.00.15.H51", "001.00.20.TT2", "vxp.saas.03",
                                  "000.00.00.k01"])
def test_real_shapes_are_accepted(code):
    assert check_agency_code(code).lower() == code.lower()


@pytest.mark.parametrize("code,reason", [
    ("", "empty"),
    ("000.00.00.00.G22", "5 dot-separated groups; at most 4"),
    ("000..00.G22", "group 2 is empty"),
    ("000.00.00.G 22", "contains ' '"),
    ("000.00.đ0.G22", "contains 'đ'"),
    ("000.00.00.22", "last group '22' must be 1-3 letters then 1-3 digits"),
    ("000.00.00.GOVT", "last group 'GOVT'"),
])
def test_refusals_say_exactly_why(code, reason):
    with pytest.raises(ValueError) as caught:
        check_agency_code(code)
    assert reason in str(caught.value)
