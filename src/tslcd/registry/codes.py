"""Agency identifier codes (mã định danh), e.g. 000.00.00.G22: structure checks that say what is wrong.

Read from the right: level 1 is three characters, one or two letters then digits, naming the top-level
organisation (G22, H17, TT2); then level 2 (two digits), level 3 (two digits) and level 4 (three digits), the
subordinate levels, zeros where unused: 000.00.00.G22. Shorter real codes drop groups on the left (28.22.H17).
Codes of test systems such as vxp.saas.03 are accepted only when a setting allows their prefix
(TSLCD_AGENCY_TEST_CODE_PREFIXES, comma-separated, e.g. "vxp.").
"""

import re
from functools import lru_cache

from tslcd.core.config import get_settings

_LEVEL1 = re.compile(r"^[A-Za-z]{1,2}[0-9]{1,2}$")
# The official shape in one pass (the common case of a 100,000-row import); anything else is explained below.
_OFFICIAL = re.compile(r"^(?:(?:[0-9]{3}\.)?[0-9]{2}\.)?(?:[0-9]{2}\.)?(?=[A-Za-z0-9]{3}$)[A-Za-z]{1,2}[0-9]{1,2}$")
_LEVELS = {2: (2, "two digits"), 3: (2, "two digits"), 4: (3, "three digits")}
_TEST_GROUP = re.compile(r"^[A-Za-z0-9]+$")


def _test_prefixes() -> tuple[str, ...]:
    return _prefixes(get_settings().agency_test_code_prefixes)


@lru_cache(maxsize=8)
def _prefixes(setting: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in setting.split(",") if p.strip())


def check_agency_code(code: str) -> str:
    """Return the code normalised (level-1 letters in capitals), or raise ValueError naming the exact fault."""
    code = code.strip()
    if _OFFICIAL.match(code):
        head, _, level1 = code.rpartition(".")
        return f"{head}.{level1.upper()}" if head else level1.upper()
    if not code:
        raise ValueError("the code is empty")
    groups = code.split(".")
    prefix = next((p for p in _test_prefixes() if code.lower().startswith(p)), None)
    if prefix is not None:
        if len(groups) > 4 or not all(_TEST_GROUP.match(g) for g in groups):
            raise ValueError(f"'{code}': a test system's code has at most 4 dot-separated groups of letters and "
                             "digits")
        return code
    if len(groups) > 4:
        raise ValueError(f"'{code}' has {len(groups)} dot-separated groups; at most 4 are allowed")
    n = len(groups)
    for i, group in enumerate(groups, start=1):
        if not group:
            raise ValueError(f"'{code}': group {i} is empty (two dots in a row, or a dot at an end)")
        bad = next((c for c in group if not c.isascii() or not c.isalnum()), None)
        if bad is not None:
            raise ValueError(f"'{code}': group {i} '{group}' contains '{bad}'; only letters and digits are allowed")
    level1 = groups[-1]
    if len(level1) != 3 or not _LEVEL1.match(level1):
        raise ValueError(f"'{code}': the last group '{level1}' (level 1, the top-level organisation) must be three "
                         "characters, one or two letters then digits, e.g. G22, H17 or TT2")
    for i, group in enumerate(groups[:-1], start=1):
        level = n - i + 1
        width, words = _LEVELS[level]
        if len(group) != width or not group.isdigit():
            raise ValueError(f"'{code}': group {i} '{group}' (level {level}) must be {words}"
                             + (" (codes of test systems need their prefix in TSLCD_AGENCY_TEST_CODE_PREFIXES)"
                                if not any(c.isdigit() for c in group) else ""))
    return ".".join(groups[:-1] + [level1.upper()])
