"""Marketplace workspace: investment matrix, funnels, properties, amenities and device demand."""
from .state import MarketplaceState
from .views import MarketplaceView

__all__ = ["MarketplaceState", "MarketplaceView"]
