"""Turning what a person typed into SQL, as tables: input -> SQL text and bound parameters. No
database: the paging module only builds statements (the database tests run them)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from data.errors import ValidationError
from data.paging import (CHOICE, DATE, NUMBER, TEXT, WHOLE, Column, Listing, PageQuery, like_pattern, parse_date_filter,
                         parse_number_filter, typed_text, whole_number)

LISTING = Listing(name="things", key="id", source="things t",
                  columns={"id": Column("t.id", NUMBER), "name": Column("t.name", TEXT),
                           "kind": Column("t.kind", CHOICE), "made": Column("t.made", DATE),
                           "secret": Column("t.secret", TEXT, sortable=False),
                           "n": Column("t.n", WHOLE, sortable=False)},
                  default_sort=(("made", True),))


@pytest.mark.parametrize("filters, clauses, params", [
    ((("name", "ann"),), ["t.name ILIKE :f0 ESCAPE '\\'"], {"f0": "%ann%"}),
    ((("name", "50%_off\\"),), ["t.name ILIKE :f0 ESCAPE '\\'"], {"f0": "%50\\%\\_off\\\\%"}),
    ((("name", "'; DROP TABLE things; --"),), ["t.name ILIKE :f0 ESCAPE '\\'"], {"f0": "%'; DROP TABLE things; --%"}),
    ((("kind", ["a", "b"]),), ["t.kind = ANY(:f0)"], {"f0": ["a", "b"]}),
    ((("kind", "a"),), ["t.kind = ANY(:f0)"], {"f0": ["a"]}),
    ((("id", ">100"),), ["t.id > :f0"], {"f0": 100.0}),
    ((("id", "<= 5"),), ["t.id <= :f0"], {"f0": 5.0}),
    ((("id", "20..10"),), ["t.id BETWEEN :f0a AND :f0b"], {"f0a": 10.0, "f0b": 20.0}),
    ((("id", "7"),), ["t.id = :f0"], {"f0": 7.0}),
    ((("id", 7),), ["t.id = :f0"], {"f0": 7.0}),
    ((("id", [1, 3]),), ["t.id BETWEEN :f0a AND :f0b"], {"f0a": 1.0, "f0b": 3.0}),
    ((("made", "2026-11-20"),), ["t.made >= :f0a", "t.made < :f0b"],
     {"f0a": date(2026, 11, 20), "f0b": date(2026, 11, 21)}),
    ((("made", ">2026-11-20"),), ["t.made >= :f0a"], {"f0a": date(2026, 11, 21)}),
    ((("name", ""), ("kind", [])), [], {}),
    ((("name", "a"), ("id", ">1")), ["t.name ILIKE :f0 ESCAPE '\\'", "t.id > :f1"], {"f0": "%a%", "f1": 1.0}),
])
def test_filters_become_clauses_with_bound_parameters(filters, clauses, params):
    assert LISTING.conditions(PageQuery(filters=filters)) == (clauses, params)


@pytest.mark.parametrize("typed, clauses, params", [
    (">2.5", ["t.n > :f0"], {"f0": 2}),
    (">=2.5", ["t.n >= :f0"], {"f0": 3}),
    ("<2.5", ["t.n < :f0"], {"f0": 3}),
    ("<=2.5", ["t.n <= :f0"], {"f0": 2}),
    ("2.5", ["false"], {}),
    ("7", ["t.n = :f0"], {"f0": 7}),
    ("1.5..3.5", ["t.n BETWEEN :f0a AND :f0b"], {"f0a": 2, "f0b": 3}),
    (7.0, ["t.n = :f0"], {"f0": 7}),
])
def test_whole_number_columns_compare_with_integers(typed, clauses, params):
    """An integer column bound to a decimal would be converted row by row, and its index unused."""
    got = LISTING.conditions(PageQuery(filters=(("n", typed),)))
    assert got == (clauses, params) and all(type(v) is int for v in got[1].values())


def test_decimal_columns_compare_with_exact_decimals_not_floats():
    _, params = LISTING.conditions(PageQuery(filters=(("id", "0.1..0.3"),)))
    assert params == {"f0a": Decimal("0.1"), "f0b": Decimal("0.3")}
    assert all(isinstance(v, Decimal) for v in params.values())


@pytest.mark.parametrize("filters, says", [
    ((("nope", "x"),), "There is no column 'nope'"),
    ((("name", "a\x00b"),), "filter on name contains control or invisible characters"),
    ((("name", "x" * 201),), "type at most 200"),
    ((("name", ["a"]),), "filter on name must be text, not list"),
    ((("kind", [5]),), "filter on kind must be text, not int"),
    ((("id", "lots"),), "not a number filter"),
    ((("id", "١٢"),), "not a number filter"),
    ((("id", {"a": 1}),), "filter on id must be a number"),
    ((("id", [1]),), "filter on id must be a range of two numbers"),
    ((("id", float("nan")),), "filter on id must be a number"),
    ((("made", 7),), "filter on made must be a day"),
    ((("made", "yesterday-ish"),), "not a date filter"),
])
def test_filters_that_cannot_be_used_are_refused_with_a_reason(filters, says):
    with pytest.raises(ValidationError) as caught:
        LISTING.conditions(PageQuery(filters=filters))
    assert says in caught.value.message


@pytest.mark.parametrize("sort, order_by", [
    ((), "t.made DESC, t.id DESC"),
    ((("name", False),), "t.name ASC, t.id ASC"),
    ((("name", True), ("kind", False)), "t.name DESC, t.kind ASC, t.id DESC"),
])
def test_sorting_breaks_ties_by_the_key_in_the_first_column_s_direction(sort, order_by):
    assert LISTING.order_by(PageQuery(sort=sort)) == order_by


@pytest.mark.parametrize("sort, says", [((("secret", False),), "cannot be sorted"),
                                         ((("t.id; DROP", False),), "There is no column")])
def test_sorting_only_by_known_sortable_columns(sort, says):
    with pytest.raises(ValidationError, match=says):
        LISTING.order_by(PageQuery(sort=sort))


class RecordingDatabase:
    """Stands where a Database would and records what it is asked, answering a count of 60 and
    pages of rows whose sort values are their position."""

    def __init__(self):
        self.asked: list[tuple[str, str, dict]] = []

    def scalar(self, name, sql, params=None):
        self.asked.append((name, sql, dict(params or {})))
        return 60

    def rows(self, name, sql, params=None):
        self.asked.append((name, sql, dict(params or {})))
        return [{"id": i, "name": "", "kind": "", "made": None, "secret": "", "n": 0, "_sort0": i, "_sort1": i, "_sort2": i}
                for i in range(params["page_limit"])]


SELECT = ('SELECT t.id AS "id", t.name AS "name", t.kind AS "kind", t.made AS "made", t.secret AS "secret", '
          't.n AS "n", t.made AS _sort0, t.id AS _sort1 FROM things t')


def test_the_first_page_is_one_count_and_one_bound_select():
    db = RecordingDatabase()
    page = LISTING.fetch(db, PageQuery(page=1, size=25, filters=(("kind", ["a"]),)))
    (count_name, count_sql, count_params), (page_name, page_sql, page_params) = db.asked
    assert count_name == "things_count" and count_sql == "SELECT count(*) FROM things t WHERE t.kind = ANY(:f0)"
    assert page_name == "things_page"
    assert page_sql == (f"{SELECT} WHERE t.kind = ANY(:f0) ORDER BY t.made DESC, t.id DESC "
                        "LIMIT :page_limit OFFSET :page_offset")
    assert page_params == {"f0": ["a"], "page_limit": 25, "page_offset": 0}
    assert (page.page, page.pages, page.first_row, page.last_row) == (1, 3, 1, 25)
    assert (page.bookmark.page, page.bookmark.first, page.bookmark.last) == (1, (0, 0), (24, 24))


def test_the_next_page_seeks_past_the_last_row_shown_instead_of_skipping_rows():
    db = RecordingDatabase()
    first = LISTING.fetch(db, PageQuery(size=10))
    LISTING.fetch(db, PageQuery(page=2, size=10, bookmark=first.bookmark))
    _, sql, params = db.asked[-1]
    assert sql == (f"{SELECT} WHERE t.made <= :seek0 AND (t.made, t.id) < (:seek0, :seek1) "
                   "ORDER BY t.made DESC, t.id DESC LIMIT :page_limit OFFSET :page_offset")
    assert params == {"seek0": 9, "seek1": 9, "page_limit": 10, "page_offset": 0}


@pytest.mark.parametrize("page, reads", [
    (1, "ORDER BY t.made DESC, t.id DESC LIMIT"),                                      # from the start
    (6, "ORDER BY t.made ASC, t.id ASC LIMIT"),                                        # from the end
    (3, "WHERE t.made <= :seek0 AND (t.made, t.id) <= (:seek0, :seek1) ORDER BY t.made DESC"),   # the same page
    (4, "WHERE t.made <= :seek0 AND (t.made, t.id) < (:seek0, :seek1) ORDER BY t.made DESC"),    # a later one
    (2, "WHERE t.made >= :seek0 AND (t.made, t.id) > (:seek0, :seek1) ORDER BY t.made ASC"),     # an earlier one
])
def test_each_page_is_read_from_the_nearest_place_known(page, reads):
    db = RecordingDatabase()
    shown = LISTING.fetch(db, PageQuery(page=3, size=10)).bookmark
    LISTING.fetch(db, PageQuery(page=page, size=10, bookmark=shown))
    assert reads in db.asked[-1][1]
    assert db.asked[-1][2]["page_offset"] == 0


def test_a_bookmark_from_another_sort_or_filter_is_not_used():
    db = RecordingDatabase()
    shown = LISTING.fetch(db, PageQuery(page=1, size=10, filters=(("kind", ["a"]),))).bookmark
    LISTING.fetch(db, PageQuery(page=2, size=10, bookmark=shown))
    assert ":seek0" not in db.asked[-1][1] and db.asked[-1][2]["page_offset"] == 10


def test_mixed_directions_seek_column_by_column():
    db = RecordingDatabase()
    query = PageQuery(size=10, sort=(("name", True), ("kind", False)))
    LISTING.fetch(db, replace(query, page=2, bookmark=LISTING.fetch(db, query).bookmark))
    assert ("WHERE t.name <= :seek0 AND ((t.name < :seek0) OR (t.name = :seek0 AND t.kind > :seek1) OR "
            "(t.name = :seek0 AND t.kind = :seek1 AND t.id < :seek2))") in db.asked[-1][1]


def test_a_page_past_the_end_shows_the_last_page_and_sizes_are_bounded():
    db = RecordingDatabase()
    assert LISTING.fetch(db, PageQuery(page=99, size=25)).page == 3
    with pytest.raises(ValidationError, match="1 to 500 rows"):
        LISTING.fetch(db, PageQuery(size=501))


@pytest.mark.parametrize("text, parsed", [("100", ("=", 100.0)), (">= 2.5", (">=", 2.5)), ("≥3", (">=", 3.0)),
                                          ("10-20", ("between", 10.0, 20.0)), ("-5", ("=", -5.0))])
def test_number_filters(text, parsed):
    assert parse_number_filter(text) == parsed


@pytest.mark.parametrize("text, parsed", [
    ("today", (date(2026, 12, 1), date(2026, 12, 2))),
    ("2026-11-01..2026-11-03", (date(2026, 11, 1), date(2026, 11, 4))),
    ("<2026-11-03", (None, date(2026, 11, 3))), ("<=2026-11-03", (None, date(2026, 11, 4)))])
def test_date_filters(text, parsed):
    assert parse_date_filter(text, today=date(2026, 12, 1)) == parsed


@pytest.mark.parametrize("typed, kept", [(" ann ", "ann"), ("Zoë", "Zoë"), ("", "")])
def test_typed_text_is_trimmed_and_kept(typed, kept):
    assert typed_text(typed, "search") == kept


@pytest.mark.parametrize("typed, number", [("12", 12), ("0012", 12), ("²", None), ("١٢", None), ("1_0", None),
                                           ("+5", None), ("1e3", None), ("9" * 19, None)])
def test_an_id_is_ascii_digits_only(typed, number):
    assert whole_number(typed) == number


def test_like_patterns_escape_their_wildcards():
    assert like_pattern("a%b_c\\") == "%a\\%b\\_c\\\\%"
