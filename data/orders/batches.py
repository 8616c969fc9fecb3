"""Batches: a bulk action or an import is one audited batch (`app.batch`), and can be undone as a
whole by one compensating batch that puts back every field it changed, all or nothing, through the
one write rule: a field changed again since the batch is a conflict (the order is named, and may be
left out), and a status the order rules do not allow going back to is refused with the reason."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ValidationError
from ..order_rules import ORDER_FIELDS, Edit

REVERT = "revert"                # the action of an undo; its batch's action says which batch it undid
RECENT_BATCHES = 10


@dataclass(frozen=True)
class Batch:
    batch_id: str
    action: str                  # "bulk", "import", "revert <batch>"
    changed_at: object
    orders: int
    changes: int
    undone: bool                 # an undo of it was applied


class OrderBatches:
    """The batch side of `Orders`."""

    def recent_batches(self, user: str, limit: int = RECENT_BATCHES) -> list[Batch]:
        """This person's latest batches, newest first."""
        return self._batches("changed_by = :user", {"user": user}, limit)

    def batches_by_id(self, batch_ids: list[str]) -> list[Batch]:
        return self._batches("batch_id = ANY(:ids)", {"ids": list(batch_ids)}, len(batch_ids))

    def _batches(self, where: str, params: dict, limit: int) -> list[Batch]:
        rows = self.db.rows("order_batches", f"""
            SELECT b.batch_id, b.action, b.changed_at, b.orders, b.changes,
                   EXISTS (SELECT 1 FROM {self.t.audit_log} u WHERE u.action = :undo || b.batch_id) AS undone
            FROM (SELECT batch_id, min(action) AS action, min(changed_at) AS changed_at,
                         count(DISTINCT order_id) AS orders, count(*) AS changes, min(audit_id) AS first
                  FROM {self.t.audit_log}
                  WHERE batch_id IS NOT NULL AND {where}
                  GROUP BY batch_id) AS b
            ORDER BY b.first DESC LIMIT :limit""", {**params, "limit": limit, "undo": f"{REVERT} "})
        return [Batch(**row) for row in rows]

    def batch_edits(self, batch_id: str) -> dict[int, list[Edit]]:
        """What undoing the batch asks, per order: each field it changed, from the value it wrote
        (what the undo expects to find) back to the value before it."""
        rows = self.db.rows("order_batch_changes", f"""
            SELECT order_id, entity, field, old_value, new_value FROM {self.t.audit_log}
            WHERE batch_id = :batch ORDER BY audit_id""", {"batch": batch_id})
        if not rows:
            raise ValidationError("There is no such batch.")
        edits: dict[int, dict[str, Edit]] = {}
        for row in rows:
            if row["entity"] != "orders" or row["field"] not in ORDER_FIELDS:
                raise ValidationError(f"This batch changed {row['entity']} {row['field'] or ''}, which an undo "
                                      "cannot put back; change those orders one by one.")
            first = edits.setdefault(row["order_id"], {}).get(row["field"])
            before = first.new if first else row["old_value"]
            edits[row["order_id"]][row["field"]] = Edit(row["field"], row["new_value"], before)
        return {order_id: list(fields.values()) for order_id, fields in edits.items()}

    def undo_batch(self, user: str, batch_id: str, leave_out: frozenset[int] = frozenset()) -> int:
        """Put back every field the batch changed, in one transaction and one new batch, except on
        the orders left out. All or none: raises BulkRefused naming each order changed since (or
        whose old status the rules forbid now). Returns how many orders changed."""
        edits = self.batch_edits(batch_id)
        undone = self.db.scalar("batch_undone", f"SELECT count(*) FROM {self.t.audit_log} WHERE action = :a",
                                {"a": f"{REVERT} {batch_id}"})
        if undone:
            raise ValidationError("This batch was undone already.")
        batch = {f"{order_id}": (order_id, fields) for order_id, fields in edits.items() if order_id not in leave_out}
        if not batch:
            raise ValidationError("Every order of the batch was left out: nothing to undo.")
        return self._apply_all("undo_batch", user, f"{REVERT} {batch_id}", batch, undo=True,
                               what="orders (changed since the batch, or not allowed back)")
