"""Master data: sites (and, with later issues, temperature classes, products, lots, locations)."""
