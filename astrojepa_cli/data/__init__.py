"""Data in: sources that import into the canonical store, and batched views of a store."""
