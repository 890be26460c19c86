"""Inventory documents (receiving notes, dispatch orders, transfers), binding, reconciliation, custody."""
