"""The rules every order write obeys: grid edits, the order form, bulk actions and CSV import.

Each `clean_*` function takes what a person typed (text, or a value from a widget) and returns
the value to store, or raises `ValidationError` with a sentence saying what is wrong. Nothing
here touches the database.
"""
from __future__ import annotations

import re
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
MAX_MONEY = Decimal("1000000")
MAX_UNIT_PRICE = Decimal("100000")
MAX_QUANTITY = 999
MAX_TEXT = {"shipping_address": 300, "notes": 2000, "name": 120, "email": 254, "address": 300}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def allowed_statuses(current: str) -> tuple[str, ...]:
    """The statuses an order in `current` may move to (itself excluded)."""
    return TRANSITIONS.get(current, ())


def check_transition(current: str, new: str) -> str:
    new = str(new).strip().lower()
    if new not in STATUSES:
        raise ValidationError(f"'{new}' is not a status; use one of {', '.join(STATUSES)}.")
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


def clean_order_field(name: str, value, row: dict):
    """A new value for one order field, checked against the order as it is now (`row`)."""
    if name == "status":
        return check_transition(row["status"], value)
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
