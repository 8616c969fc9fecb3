"""The rules every order write obeys: grid edits, the order form, bulk actions and CSV import.

Each `clean_*` function takes what a person typed (text, or a value from a widget) and returns
the value to store, or raises `ValidationError` with a sentence saying what is wrong. Nothing
here touches the database.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import ValidationError

STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "returned")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("confirmed", "cancelled"),
    "confirmed": ("processing", "cancelled"),
    "processing": ("shipped", "cancelled"),
    "shipped": ("delivered", "returned"),
    "delivered": ("returned",),
    "cancelled": (),
    "returned": (),
}
ORDER_FIELDS = ("status", "discount", "shipping_fee", "shipping_address", "notes")
CUSTOMER_FIELDS = ("name", "email", "address")
# What a person may change about an order, by the names the grid and the form use: its own fields,
# its customer's (the grid's "customer" is the name) and its lines.
CUSTOMER_COLUMN = {"customer": "name", "name": "name", "email": "email", "address": "address"}
ITEMS = "items"
EDITABLE = (*ORDER_FIELDS, *CUSTOMER_COLUMN, ITEMS)
MONEY_FIELDS = ("discount", "shipping_fee")
MAX_MONEY = Decimal("1000000")
MAX_UNIT_PRICE = Decimal("100000")
MAX_QUANTITY = 999
MAX_TEXT = {"shipping_address": 300, "notes": 2000, "name": 120, "email": 254, "address": 300}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def allowed_statuses(current: str) -> tuple[str, ...]:
    """The statuses an order in `current` may move to (itself excluded)."""
    return TRANSITIONS.get(current, ())


# What an undo of a batch may not take an order back out of: what happened at the customer's door.
NO_GOING_BACK = ("delivered", "returned")


def check_transition(current: str, new: str, *, undo: bool = False) -> str:
    """`new` if an order that is `current` may become it. An undo may also take a step back: to
    the status the order came from, unless the step it undoes cannot be unmade (NO_GOING_BACK)."""
    new = str(new).strip().lower()
    if new not in STATUSES:
        raise ValidationError(f"'{new}' is not a status; use one of {', '.join(STATUSES)}.")
    if undo and current in TRANSITIONS.get(new, ()):
        if current in NO_GOING_BACK:
            raise ValidationError(f"An order that is {current} cannot go back to {new}: that happened at the "
                                  "customer's door.")
        return new
    if new != current and new not in TRANSITIONS.get(current, ()):
        allowed = TRANSITIONS.get(current, ())
        options = f"it can go to {' or '.join(allowed)}" if allowed else "it cannot change any more"
        raise ValidationError(f"An order that is {current} cannot become {new}; {options}.")
    return new


def clean_money(value, label: str, *, maximum: Decimal = MAX_MONEY) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"{label} is required.")
    if isinstance(value, float) and value != value:  # NaN from an emptied numeric cell
        raise ValidationError(f"{label} is required.")
    try:
        amount = Decimal(str(value).strip().replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise ValidationError(f"{label} must be a number, not '{value}'.") from None
    if not amount.is_finite():
        raise ValidationError(f"{label} must be a number, not '{value}'.")
    if amount < 0:
        raise ValidationError(f"{label} cannot be negative.")
    if amount > maximum:
        raise ValidationError(f"{label} cannot be more than {maximum:,}.")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(f"{label} has at most two decimals (cents).")
    return amount.quantize(Decimal("0.01"))


def clean_quantity(value) -> int:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"Quantity must be a whole number, not '{value}'.") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValidationError(f"Quantity must be a whole number, not '{value}'.")
    if not 1 <= number <= MAX_QUANTITY:
        raise ValidationError(f"Quantity must be between 1 and {MAX_QUANTITY}.")
    return int(number)


def clean_text(value, name: str, *, required: bool = False) -> str:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
    label = name.replace("_", " ").capitalize()
    if required and not text:
        raise ValidationError(f"{label} is required.")
    if len(text) > MAX_TEXT[name]:
        raise ValidationError(f"{label} is limited to {MAX_TEXT[name]} characters.")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise ValidationError(f"{label} contains control characters.")
    return text


def clean_email(value) -> str:
    email = clean_text(value, "email", required=True).lower()
    if not _EMAIL.match(email):
        raise ValidationError(f"'{email}' is not an e-mail address.")
    return email


def clean_order_field(name: str, value, row: dict, *, undo: bool = False):
    """A new value for one order field, checked against the order as it is now (`row`); `undo`:
    putting back what a batch changed (see `check_transition`)."""
    if name == "status":
        return check_transition(row["status"], value, undo=undo)
    if name in ("discount", "shipping_fee"):
        amount = clean_money(value, name.replace("_", " ").capitalize())
        discount = amount if name == "discount" else Decimal(str(row["discount"]))
        shipping = amount if name == "shipping_fee" else Decimal(str(row["shipping_fee"]))
        if discount > Decimal(str(row["items_subtotal"])) + shipping:
            raise ValidationError(f"The discount ({discount}) cannot exceed the items plus shipping "
                                  f"({Decimal(str(row['items_subtotal'])) + shipping}).")
        return amount
    if name in ("shipping_address", "notes"):
        return clean_text(value, name, required=name == "shipping_address")
    raise ValidationError(f"'{name}' cannot be edited.")


def clean_customer_field(name: str, value) -> str:
    if name == "email":
        return clean_email(value)
    if name in ("name", "address"):
        return clean_text(value, name, required=name == "name")
    raise ValidationError(f"'{name}' cannot be edited.")


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    unit_price: Decimal


def clean_item(sku, quantity, unit_price, known_skus: set[str]) -> Item:
    code = str(sku or "").strip().upper()
    if not code:
        raise ValidationError("Each item needs a SKU.")
    if code not in known_skus:
        raise ValidationError(f"There is no active product with SKU '{code}'.")
    return Item(code, clean_quantity(quantity), clean_money(unit_price, "Unit price", maximum=MAX_UNIT_PRICE))


def clean_items(rows, known_skus: set[str]) -> list[Item]:
    """Order lines from (sku, quantity, unit_price) rows; one to fifty lines, each SKU once."""
    items, problems = [], []
    for number, (sku, quantity, price) in enumerate(rows, start=1):
        try:
            items.append(clean_item(sku, quantity, price, known_skus))
        except ValidationError as exc:
            problems.append(f"line {number}: {exc.message}")
    if problems:
        raise ValidationError("; ".join(problems))
    if not items:
        raise ValidationError("An order needs at least one item.")
    if len(items) > 50:
        raise ValidationError("An order holds at most 50 lines.")
    skus = [i.sku for i in items]
    if len(set(skus)) != len(skus):
        raise ValidationError("Each SKU may appear once; change the quantity instead.")
    return items


# -- the one write rule ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Edit:
    """One field a person changed: the value they saw in it, and the value they want (as typed).
    Every writer (a grid cell, the form, a bulk action, an import) says what it wants this way."""

    field: str
    seen: object
    new: object


def same_value(field: str, a, b) -> bool:
    """Whether two values of `field` are the same as a person reads them: money to the cent (a grid
    shows 5.5 for 5.50), lines as (SKU, quantity, price), text exactly (no value and '' alike)."""
    if field in MONEY_FIELDS:
        return _cents(a) is not None and _cents(a) == _cents(b)
    if field == ITEMS:
        return _lines(a) == _lines(b)
    return _text(a) == _text(b)


def _cents(value) -> Decimal | None:
    try:
        amount = Decimal(str(value).strip().replace(",", "").lstrip("$"))
    except (InvalidOperation, ValueError):
        return None
    return amount.quantize(Decimal("0.01")) if amount.is_finite() else None


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _lines(value) -> tuple | None:
    try:
        return tuple((str(sku).strip().upper(), int(quantity), _cents(price)) for sku, quantity, price in value or ())
    except (TypeError, ValueError):
        return None


def final_order(now: dict, wanted: dict, product_skus: Callable[[], set[str]], *, undo: bool = False
                ) -> tuple[dict, dict, list[Item] | None]:
    """The order as it will be once `wanted` (field -> typed value) is applied to `now` (the order,
    its customer's fields and its lines as they are), checked as a whole: the lines first, then
    the shipping fee, then the discount against the new items and fee. `product_skus` is asked
    only when the lines change. Returns the order fields, the customer columns and the lines to
    write; raises ValidationError naming every problem."""
    problems: list[str] = []
    state = dict(now)
    lines = None
    if ITEMS in wanted:
        try:
            lines = clean_items(wanted[ITEMS], product_skus())
            state["items_subtotal"] = sum((i.unit_price * i.quantity for i in lines), Decimal(0))
        except ValidationError as exc:
            problems.append(f"Items: {exc.message}")
    order = {}
    for name in sorted((f for f in wanted if f in ORDER_FIELDS), key=lambda f: f == "discount"):
        try:
            order[name] = state[name] = clean_order_field(name, wanted[name], state, undo=undo)
        except ValidationError as exc:
            problems.append(exc.message)
    if "discount" not in order and ("shipping_fee" in order or lines is not None):
        try:                               # the discount they did not touch must still fit the new order
            clean_order_field("discount", state["discount"], state)
        except ValidationError as exc:
            problems.append(exc.message)
    customer = {}
    for name in (f for f in wanted if f in CUSTOMER_COLUMN):
        try:
            customer[CUSTOMER_COLUMN[name]] = clean_customer_field(CUSTOMER_COLUMN[name], wanted[name])
        except ValidationError as exc:
            problems.append(exc.message)
    if problems:
        raise ValidationError(" ".join(problems))
    return order, customer, lines
