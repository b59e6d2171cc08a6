from __future__ import annotations

from pathlib import Path

import pytest

from cohorthub.partner_client import (
    DelimitedSource,
    IterableSource,
    JsonLinesSource,
    SourceError,
    open_file_source,
    parse_namespace,
)
from cohorthub.partner_client.sources import Source


def members(source: Source) -> list[tuple[str, str]]:
    return sorted((ns, raw.decode()) for ns, ids in source.batches() for raw in ids)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_parse_namespace() -> None:
    assert parse_namespace("external_id") == parse_namespace("USER_ID") == "external_id"
    assert parse_namespace(" device_id ") == "device_id"
    assert parse_namespace("alias:Email") == "alias:Email"
    for bad in ("alias:", "email", ""):
        with pytest.raises(ValueError, match="unknown id type"):
            parse_namespace(bad)


def test_single_column_without_header(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "u1\nu2\r\n  u3  \n\nu1\n")
    assert members(DelimitedSource(path)) == [("external_id", x) for x in ("u1", "u1", "u2", "u3")]


def test_single_column_with_header_names_the_type(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "\ufeffdevice_id\nd1\nd2\n")
    assert members(DelimitedSource(path)) == [("device_id", "d1"), ("device_id", "d2")]


def test_id_type_option_applies_to_untyped_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "a@x.com\n")
    assert members(DelimitedSource(path, id_type="alias:email")) == [("alias:email", "a@x.com")]


def test_mixed_types_with_header(tmp_path: Path) -> None:
    text = 'id_type,id\nexternal_id,u1\ndevice_id,d1\nalias:email,"a,b@x.com"\nuser_id,u2\n'
    path = write(tmp_path, "m.csv", text)
    assert members(DelimitedSource(path)) == [
        ("alias:email", "a,b@x.com"),
        ("device_id", "d1"),
        ("external_id", "u1"),
        ("external_id", "u2"),
    ]


def test_mixed_types_tsv_without_header_and_reversed_header(tmp_path: Path) -> None:
    tsv = write(tmp_path, "m.tsv", "external_id\tu1\ndevice_id\td1\n")
    assert members(DelimitedSource(tsv)) == [("device_id", "d1"), ("external_id", "u1")]
    rev = write(tmp_path, "r.csv", "id,id_type\nu9,external_id\n")
    assert members(DelimitedSource(rev)) == [("external_id", "u9")]


def test_quoted_single_column_and_forced_header(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", 'members\n"u 1"\n"u2"\n')
    assert members(DelimitedSource(path, header=True)) == [("external_id", "u 1"), ("external_id", "u2")]


def test_errors_name_the_line(tmp_path: Path) -> None:
    bad_type = write(tmp_path, "t.csv", "id_type,id\nexternal_id,u1\nphone,555\n")
    with pytest.raises(SourceError, match=r"t.csv:3: unknown id type 'phone'"):
        members(DelimitedSource(bad_type))
    two_cols = write(tmp_path, "c.csv", 'u1\n"u2",x,y\n')
    with pytest.raises(SourceError, match="expected one column"):
        members(DelimitedSource(two_cols))
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(SourceError, match="not UTF-8"):
        members(DelimitedSource(latin))
    with pytest.raises(SourceError, match="cannot read"):
        members(DelimitedSource(tmp_path / "missing.csv"))


def test_large_file_crosses_block_boundaries(tmp_path: Path) -> None:
    ids = [f"user-{i:07d}-é" for i in range(400_000)]
    path = write(tmp_path, "big.csv", "\n".join(ids))
    got = [raw.decode() for _, batch in DelimitedSource(path).batches() for raw in batch]
    assert got == ids


def test_json_lines(tmp_path: Path) -> None:
    text = (
        '"u1"\n{"external_id": "u2"}\n{"device_id": "d1"}\n\n{"alias_label": "email", "alias_name": "a@x"}\n'
    )
    text += '{"id_type": "alias:phone", "id": "555"}\n{"user_id": 42}\n'
    path = write(tmp_path, "m.jsonl", text)
    assert members(open_file_source(path)) == [
        ("alias:email", "a@x"),
        ("alias:phone", "555"),
        ("device_id", "d1"),
        ("external_id", "42"),
        ("external_id", "u1"),
        ("external_id", "u2"),
    ]
    bad = write(tmp_path, "b.jsonl", '"u1"\n{"name": "x"}\n')
    with pytest.raises(SourceError, match=r"b.jsonl:2: expected a string or an identifier object"):
        members(JsonLinesSource(bad))
    broken = write(tmp_path, "j.jsonl", "{oops\n")
    with pytest.raises(SourceError, match="invalid JSON"):
        members(JsonLinesSource(broken))


def test_iterable_source_mixes_plain_and_typed_items() -> None:
    source = IterableSource(["u1", ("device_id", "d1"), " ", ("alias:email", "a@x")])
    assert members(source) == [("alias:email", "a@x"), ("device_id", "d1"), ("external_id", "u1")]
    with pytest.raises(SourceError, match="line breaks"):
        members(IterableSource(["bad\nid"]))
