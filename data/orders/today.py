"""Today's orders: figures against the same time yesterday, by hour, by status and by product, in
the business time zone."""
from __future__ import annotations

from ..cache import cached
from ..order_rules import STATUSES


class OrderToday:
    """Today's figures, for `Orders`."""

    def today(self) -> dict:
        return self._today(self.feed.version if self.feed else 0)

    @cached("orders_today", 60)
    def _today(self, _version: int) -> dict:
        """Today's orders and revenue against the same time yesterday, top products, statuses,
        orders by hour and new customers, in the business time zone."""
        tz = {"tz": self.timezone}
        day = "(created_at AT TIME ZONE :tz)::date"
        today = "(now() AT TIME ZONE :tz)::date"
        yesterday_so_far = (f"{day} = {today} - 1 AND (created_at AT TIME ZONE :tz)::time "
                            f"<= (now() AT TIME ZONE :tz)::time")
        totals = self.db.rows("orders_today", f"""
            SELECT count(*) FILTER (WHERE {day} = {today}) AS orders,
                   coalesce(sum(total_amount) FILTER (WHERE {day} = {today}), 0)::float8 AS revenue,
                   count(*) FILTER (WHERE {yesterday_so_far}) AS orders_yesterday,
                   coalesce(sum(total_amount) FILTER (WHERE {yesterday_so_far}), 0)::float8 AS revenue_yesterday
            FROM {self.t.orders} WHERE created_at >= now() - interval '3 days'""", tz)[0]
        customers = self.db.rows("customers_today", f"""
            SELECT count(*) FILTER (WHERE {day} = {today}) AS new_customers,
                   count(*) FILTER (WHERE {yesterday_so_far}) AS new_customers_yesterday
            FROM {self.t.customers} WHERE created_at >= now() - interval '3 days'""", tz)[0]
        products = self.db.frame("top_products_today", f"""
            SELECT p.sku, p.name, sum(i.quantity)::int AS quantity, sum(i.subtotal)::float8 AS revenue
            FROM {self.t.orders} o JOIN {self.t.order_items} i ON i.order_id = o.order_id
            JOIN {self.t.products} p ON p.product_id = i.product_id
            WHERE o.created_at >= now() - interval '2 days' AND (o.created_at AT TIME ZONE :tz)::date = {today}
            GROUP BY p.sku, p.name""", tz)
        statuses = self.db.frame("statuses_today", f"""
            SELECT status, count(*) AS orders FROM {self.t.orders}
            WHERE created_at >= now() - interval '2 days' AND {day} = {today} GROUP BY status""", tz)
        hours = self.db.frame("orders_by_hour", f"""
            SELECT CASE WHEN {day} = {today} THEN 'today' ELSE 'yesterday' END AS day,
                   extract(hour FROM created_at AT TIME ZONE :tz)::int AS hour, count(*) AS orders,
                   sum(total_amount)::float8 AS revenue
            FROM {self.t.orders}
            WHERE created_at >= now() - interval '3 days' AND {day} >= {today} - 1
            GROUP BY 1, 2 ORDER BY 1, 2""", tz)
        statuses = statuses.set_index("status").reindex(list(STATUSES), fill_value=0).reset_index()
        return {**totals, **customers,
                "top_by_quantity": products.sort_values(["quantity", "sku"], ascending=[False, True]).head(5),
                "top_by_revenue": products.sort_values(["revenue", "sku"], ascending=[False, True]).head(5),
                "statuses": statuses, "hours": hours,
                "as_of": self.db.scalar("now", "SELECT now() AT TIME ZONE :tz", tz)}

