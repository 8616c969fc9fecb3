"""Table names: the one place where identifiers are quoted.

Schema names come from settings and may be anything PostgreSQL allows, so every identifier
that reaches SQL text passes through `quote`. User input never does: it travels as bound
parameters only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.dialects import postgresql

from .settings import Settings

_preparer = postgresql.dialect().identifier_preparer

MARKETPLACE_TABLES = ("city_investment", "city_funnel", "property_performance", "amenity_lift",
                      "amenity_city_top", "device_funnel", "device_diagnosis")
RETAIL_TABLES = ("customers", "products", "orders", "order_items", "order_status_history", "audit_log")
FASHION_TABLES = ("productsdb", "usersdb", "product_image_embeddingsdb", "user_style_featuresdb")
APP_TABLES = ("app_meta", "assistant_log", "assistant_feedback", "insights", "insight_runs", "insight_baseline",
              "conversations", "assistant_turns", "verified_questions", "verified_runs", "verified_checks",
              "genie_sends", "answer_cache", "app_processes", "presence")


def quote(identifier: str) -> str:
    """Always-quoted identifier: safe for any name, including mixed case and keywords."""
    return _preparer.quote_identifier(identifier)


def qualified(schema: str, table: str) -> str:
    return f"{quote(schema)}.{quote(table)}"


@dataclass(frozen=True)
class Tables:
    """Quoted, schema-qualified names, for use inside SQL text: f"SELECT … FROM {t.orders}"."""

    schemas: dict[str, str]  # domain -> schema name (unquoted)
    renamed: dict[str, str] = field(default_factory=dict)   # the app's table name -> the database's

    @classmethod
    def from_settings(cls, settings: Settings) -> "Tables":
        return cls({"marketplace": settings.marketplace_schema, "retail": settings.retail_schema,
                    "fashion": settings.fashion_schema, "app": settings.app_schema},
                   {k: v for k, v in settings.fashion_tables.items() if k != v})

    def name(self, table: str) -> str:
        """The table's name in the database (unquoted): synced tables may be named otherwise."""
        return self.renamed.get(table, table)

    def __getattr__(self, table: str) -> str:
        for domain, names in (("marketplace", MARKETPLACE_TABLES), ("retail", RETAIL_TABLES),
                              ("fashion", FASHION_TABLES), ("app", APP_TABLES)):
            if table in names:
                return qualified(self.schemas[domain], self.name(table))
        raise AttributeError(table)

    def schema(self, domain: str) -> str:
        return quote(self.schemas[domain])

    def tables_of(self, domain: str) -> tuple[str, ...]:
        names = {"marketplace": MARKETPLACE_TABLES, "retail": RETAIL_TABLES, "fashion": FASHION_TABLES,
                 "app": APP_TABLES}[domain]
        return tuple(self.name(t) for t in names)
