"""Catalog workspace: fashion products with facets and paging, similar products, user style."""
from .state import CatalogState
from .views import CatalogView

__all__ = ["CatalogState", "CatalogView"]
