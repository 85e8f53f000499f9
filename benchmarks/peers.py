"""Figures that the peers measured, as the benchmarks print them beside their own.

The peers' files (`../shared/peers/…` from the project root) are prose and Markdown tables, not data, so each
benchmark copies the figures it compares with as constants, with the text of the file that states each one. Here
they are labelled `…_from_peers_file` with the file's path, and checked against the file when it is there: the JSON
says whether the file still states them, so a figure the peers changed is not silently compared with.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def from_peers_file(path: str, what: str, figures: dict[str, tuple[float, str]]) -> dict:
    """`figures`: name -> (value, the text of the file that states it); `path` relative to the project root."""
    file = ROOT / path
    out: dict = {"measured_in_this_run": False, "peers_file": path, "what": what}
    if not file.is_file():
        out["peers_file_check"] = "file not found: figures unchecked"
    else:
        text = " ".join(file.read_text(encoding="utf-8").split())  # a quote may span a line break
        stale = [name for name, (_, quote) in figures.items() if " ".join(quote.split()) not in text]
        out["peers_file_check"] = f"no longer in the file: {', '.join(stale)}" if stale else "each figure found"
    out.update({f"{name}_from_peers_file": value for name, (value, _) in figures.items()})
    return out
