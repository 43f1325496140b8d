"""Trunk mode: small files packed into container files (storage_internals.md §11)."""
