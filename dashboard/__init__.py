"""Everything a user sees: Param state classes and Panel views, one module per workspace."""
