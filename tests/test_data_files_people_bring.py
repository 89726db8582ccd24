"""Files people bring: a UTF-8 byte-order mark (Windows tools, Excel's "CSV UTF-8") loads; an empty file is
reported as empty, by name, instead of ending in "no training rows are left after filtering"."""

import json

import pytest

from labkit.data import SourceError, read_local, read_source

ROW = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
BOM = "\ufeff"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_with_byte_order_mark_loads(tmp_path):
    path = _write(tmp_path / "rows.jsonl", BOM + json.dumps(ROW) + "\n" + json.dumps(ROW) + "\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_local(path) == [ROW, ROW]


def test_json_with_byte_order_mark_loads(tmp_path):
    path = _write(tmp_path / "rows.json", BOM + json.dumps([ROW]))
    assert read_local(path) == [ROW]


def test_csv_with_byte_order_mark_keeps_its_first_column_name(tmp_path):
    path = _write(tmp_path / "rows.csv", BOM + "instruction,output\nAdd 2 and 2,4\n")
    assert read_local(path) == [{"instruction": "Add 2 and 2", "output": "4"}]


@pytest.mark.parametrize("name, text", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("empty.json", ""),
                                        ("list.json", "[]"), ("header.csv", "instruction,output\n"),
                                        ("bom_only.jsonl", BOM)])
def test_empty_file_is_reported_by_name(tmp_path, name, text):
    path = _write(tmp_path / name, text)
    with pytest.raises(SourceError, match=rf"{name}' is empty: it holds no rows"):
        read_source(str(path))
