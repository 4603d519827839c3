"""The shared CSV reading rules: where a record starts, and how a bad row is named."""

from __future__ import annotations

from auxeng import csvinput


def test_a_bad_row_is_named_file_colon_line_colon_reason():
    assert csvinput.where("answers.csv", 7) == "answers.csv:7"
    assert csvinput.located("answers.csv", 7, "nps: 11 is out of range 0-10") == (
        "answers.csv:7: nps: 11 is out of range 0-10"
    )


def test_records_start_on_their_physical_line():
    text = (
        "\n"  # 1: blank before the header
        "a,b\n"  # 2
        '1,"two\nlines"\n'  # 3-4
        "\n"  # 5: blank
        '2,"three\r\nlines\rhere"\n'  # 6-8 (\r\n and \r are line breaks too)
        '3,"x"y\n'  # 9: text after a closing quote
        "4,z\n"  # 10
    )
    found = [(type(r).__name__, r.line) for r in csvinput.records(text)]
    assert found == [("Row", 2), ("Row", 3), ("Row", 6), ("Problem", 9), ("Row", 10)]
