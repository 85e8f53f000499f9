from tslcd.core import text


def test_table_aligns_vietnamese_text():
    decomposed = "Hà Nội".replace("à", "a\u0300")
    lines = text.table(["Tên", "n"], [(decomposed, 1), ("Huế", 22)]).splitlines()
    assert text._width(lines[2][:lines[2].rindex("1")]) == text._width(lines[3][:lines[3].index("22")]) == 8
