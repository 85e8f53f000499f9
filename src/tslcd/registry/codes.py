"""Agency identifier codes (mã định danh), e.g. 000.00.00.G22: structure checks that say what is wrong."""

import re

_GROUP = re.compile(r"^[A-Za-z0-9]+$")
_TOP = re.compile(r"^[A-Za-z]{1,3}[0-9]{1,3}$")


def check_agency_code(code: str) -> str:
    """Return the code normalised, or raise ValueError naming the exact fault.

    Accepted: up to four dot-separated groups; when the leading groups are numeric (the official shape,
    `000.00.00.G22`, `28.22.H17`, `001.00.20.TT2`) the last group is letters then digits. Test systems' codes
    such as `vxp.saas.03` (non-numeric leading groups) only need alphanumeric groups, as on the national hub.
    """
    code = code.strip()
    if not code:
        raise ValueError("the code is empty")
    groups = code.split(".")
    if len(groups) > 4:
        raise ValueError(f"'{code}' has {len(groups)} dot-separated groups; at most 4 are allowed")
    for i, group in enumerate(groups, start=1):
        if not group:
            raise ValueError(f"'{code}': group {i} is empty (two dots in a row, or a dot at an end)")
        if not _GROUP.match(group):
            bad = next(c for c in group if not c.isascii() or not c.isalnum())
            raise ValueError(f"'{code}': group {i} '{group}' contains '{bad}'; only letters and digits are allowed")
    official = all(g.isdigit() for g in groups[:-1])
    if official and not _TOP.match(groups[-1]):
        raise ValueError(f"'{code}': the last group '{groups[-1]}' must be 1-3 letters then 1-3 digits "
                         "naming the top-level organisation, e.g. G22 or H17")
    if official:
        return ".".join(groups[:-1] + [groups[-1].upper()])
    return code
