"""Provider adapters: one module per provider behind one Protocol."""
