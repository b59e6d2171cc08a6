"""Import files (pure): CSV headers, cell types, JSON lines, and why a row is rejected."""

from __future__ import annotations

import io
import re

import pytest

from cohorthub.identity.attributes import SetValue
from cohorthub.identity.bulk import (
    ImportRow,
    Parsed,
    Rejection,
    decode_text,
    format_of,
    format_of_path,
    infer,
    parse_rows,
)
from cohorthub.identity.errors import InvalidImportFile, UnsupportedImportType
from cohorthub.identity.model import STANDARD_FIELDS, UserAlias


def rows(text: str, kind: str = "csv") -> list[Parsed]:
    return list(parse_rows("csv" if kind == "csv" else "jsonl", io.StringIO(text, newline="")))


def custom(row: Parsed) -> dict[str, object]:
    assert isinstance(row, ImportRow), row
    return {k: op.value for k, op in row.update.custom.items() if isinstance(op, SetValue)}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("007", "007"),  # a leading zero keeps it a string (zip codes, ids)
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("TRUE", True),
        ("false", False),
        ("2024-01-02T03:04:05Z", {"$time": "2024-01-02T03:04:05.000Z"}),
        ("2024-01-02", "2024-01-02"),  # a date alone is text unless declared :time, as /users/track types it
        ("1,5", "1,5"),
        ("pro", "pro"),
        ("nan", "nan"),
        ("12345678901234567890", 1.2345678901234567e19),
    ],
)
def test_cells_are_typed_as_braze_types_them(text: str, value: object) -> None:
    assert infer(text, "a") == value


def test_a_header_names_standard_fields_identifiers_and_typed_custom_attributes() -> None:
    (row,) = rows(
        "external_id,first_name,email,gender,plan:string,level:int,ratio:float,vip:boolean,seen:time,push_subscribe\n"
        "u1, Ann ,A@X.io,female,42,3,2,true,2024-01-02,opted_in\n"
    )
    assert isinstance(row, ImportRow)
    assert (row.line, row.target.kind, row.target.value, row.target.create) == (2, "external_id", "u1", True)
    assert row.update.standard == {"first_name": "Ann", "email": "a@x.io", "gender": "F"}
    assert custom(row) == {
        "plan": "42",
        "level": 3,
        "ratio": 2.0,
        "vip": True,
        "seen": {"$time": "2024-01-02T00:00:00.000Z"},
    }


def test_empty_cells_are_left_unset() -> None:
    (row,) = rows("external_id,first_name,plan\nu1,,\n")
    assert isinstance(row, ImportRow)
    assert not row.update


def test_aliases_create_and_braze_ids_only_update() -> None:
    (alias,) = rows("user_alias_name,user_alias_label,plan\nann,crm,pro\n")
    assert isinstance(alias, ImportRow)
    assert alias.target.value == UserAlias(label="crm", name="ann") and alias.target.create
    (braze,) = rows("braze_id,plan\n0123456789abcdef01234567,pro\n")
    assert isinstance(braze, ImportRow) and braze.target.kind == "braze_id" and not braze.target.create


def test_rejected_rows_say_why_with_their_line_numbers() -> None:
    text = (
        "external_id,email,level:int,time_zone\n"  # line 1
        "u1,a@x.io,1,Europe/Madrid\n"  # 2: fine
        ",a@x.io,1,\n"  # 3: no identifier
        "u3,not-an-email,1,\n"  # 4
        "u4,,one,\n"  # 5
        "u5,,,Mars/Olympus\n"  # 6
        "u6,\n"  # 7
        '"u7\nstill u7",,2,\n'  # 8-9: one row over two lines
        "u8,,3,\n"  # 10
    )
    parsed = rows(text)
    assert [(r.line, r.reason) for r in parsed if isinstance(r, Rejection)] == [
        (3, "external_id must not be empty"),
        (4, "email is not an email address"),
        (5, "level: 'one' is not an integer"),
        (6, "time_zone must be an IANA time zone name such as America/New_York"),
        (7, "2 values for 4 columns"),
    ]
    assert [r.line for r in parsed if isinstance(r, ImportRow)] == [2, 8, 10]


def test_a_broken_quote_rejects_its_row_and_the_import_goes_on() -> None:
    parsed = rows('external_id,plan\nu1,"pro"x\nu2,free\n')
    assert isinstance(parsed[0], Rejection) and parsed[0].line == 2 and "not valid CSV" in parsed[0].reason
    assert isinstance(parsed[1], ImportRow) and parsed[1].target.value == "u2"


def test_a_string_over_255_characters_is_rejected() -> None:
    (row,) = rows(f"external_id,note\nu1,{'x' * 256}\n")
    assert isinstance(row, Rejection) and row.reason == "note is longer than 255 characters"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("first_name,plan", "No identifier column"),
        ("user_alias_name,plan", "user_alias_name and user_alias_label go together"),
        ("external_id,braze_id", "A file names its users one way"),
        ("external_id,plan,plan", "Duplicate column(s): plan"),
        ("external_id,plan:money", "unknown type 'money'"),
        ("external_id,email:int", "email is a standard field"),
        ("external_id,$plan", "must not start with $"),
        ("external_id,device_id", "not supported in a CSV import"),
    ],
)
def test_an_unusable_header_is_a_file_error(header: str, message: str) -> None:
    with pytest.raises(InvalidImportFile, match=re.escape(message)):
        rows(header + "\nu1,x\n")


def test_json_lines_are_track_attributes_objects() -> None:
    text = (
        '{"external_id": "u1", "plan": "pro", "visits": {"inc": 2}}\n'
        "\n"
        '{"user_alias": {"alias_name": "a", "alias_label": "l"}, "_update_existing_only": false}\n'
        "[1, 2]\n"
        '{"external_id": "u4", "email": "nope"}\n'
        "{not json\n"
        '{"plan": "orphan"}\n'
        '{"external_id": "u8", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    parsed = rows(text, "jsonl")
    assert [type(r).__name__ for r in parsed] == [
        "ImportRow",
        "ImportRow",
        "Rejection",
        "Rejection",
        "Rejection",
        "Rejection",
        "Rejection",
    ]
    assert [r.line for r in parsed] == [1, 3, 4, 5, 6, 7, 8]
    assert isinstance(parsed[1], ImportRow) and parsed[1].target.create
    assert [r.reason for r in parsed if isinstance(r, Rejection)] == [
        "each line must be a JSON object",
        "email is not an email address",
        "not a valid JSON object",
        "one of external_id, user_alias, braze_id, email, phone or device_id is required",
        "not a valid JSON object: nested too deeply",
    ]


def test_file_level_problems() -> None:
    with pytest.raises(InvalidImportFile, match="not UTF-8 text \\(invalid byte at offset 12\\)"):
        decode_text(b"external_id\n\xff\n")
    with pytest.raises(InvalidImportFile, match="The file is empty"):
        decode_text(b" \n\n")
    assert decode_text("\ufeffexternal_id\nu1\n".encode()) == "external_id\nu1\n"
    with pytest.raises(InvalidImportFile, match="The file is empty"):
        rows("\n\n")
    with pytest.raises(UnsupportedImportType, match="text/csv or application/x-ndjson"):
        format_of("application/json")
    assert format_of("text/csv; charset=utf-8") == "csv"
    assert format_of("application/x-ndjson") == "jsonl"
    assert (format_of_path("a.NDJSON"), format_of_path("a.jsonl"), format_of_path("a.txt")) == (
        "jsonl",
        "jsonl",
        "csv",
    )


def created(row: Parsed) -> tuple[object, ...] | None:
    assert isinstance(row, ImportRow), row
    return row.created


def test_a_row_that_can_create_its_user_alone_carries_the_values_it_would_store() -> None:
    csv_row, *_ = rows("external_id,first_name,email,visits,vip\nu1,Ann,ANN@X.io,3,true\n")
    values = created(csv_row)
    assert values is not None and len(values) == len(STANDARD_FIELDS) + 1
    stored = dict(zip(STANDARD_FIELDS, values, strict=False))
    assert (stored["first_name"], stored["email"], stored["country"]) == ("Ann", "ann@x.io", None)
    assert values[-1] == '{"vip":true,"visits":3}'  # the stored JSON: compact, keys sorted
    jsonl = rows('{"external_id": "u2", "b": 1, "a": [2, 1], "gone": null, "country": null}\n', "jsonl")
    assert created(jsonl[0])[-1] == '{"a":[2,1],"b":1}'  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("braze_id,plan\n0123456789abcdef01234567,pro\n", "csv"),  # updates only
        ("user_alias_name,user_alias_label,plan\nann,crm,pro\n", "csv"),
        ("external_id,email_subscribe\nu1,opted_in\n", "csv"),  # a subscription change is an event
        ('{"external_id": "u1", "visits": {"inc": 1}}\n', "jsonl"),  # not a plain value
        ('{"external_id": "u1", "tags": {"add": ["a"]}}\n', "jsonl"),
        ('{"external_id": "u1", "device_id": "d1", "plan": "pro"}\n', "jsonl"),  # a sign-in
        ('{"external_id": "u1", "_update_existing_only": true, "plan": "pro"}\n', "jsonl"),
    ],
)
def test_other_rows_go_through_the_identity_rules(text: str, kind: str) -> None:
    (row,) = rows(text, kind)
    assert created(row) is None
