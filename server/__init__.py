"""Serving plumbing with no views: what the HTTP server adds to every response."""
