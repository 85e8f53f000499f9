"""The README's import section is what `tslcd import all --columns --markdown` prints (generated from the schemas)."""

from pathlib import Path

from tslcd.registry.columns import describe
from tslcd.registry.resources import RESOURCES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_the_columns_the_schemas_declare():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- import-columns:start -->\n", "\n<!-- import-columns:end -->"
    documented = text[text.index(start) + len(start):text.index(end)]
    assert documented == describe(list(RESOURCES), markdown=True), (
        "README.md's import columns are stale: paste the output of `tslcd import all --columns --markdown`")


def test_every_importable_column_is_described():
    from tslcd.registry.columns import rows
    from tslcd.registry.service import export_columns

    for name, res in RESOURCES.items():
        assert [r[0] for r in rows(res)] == export_columns(res), name
