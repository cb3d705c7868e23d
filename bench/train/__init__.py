"""Training: loop.py holds the recipe, the data pipeline, the loss and the loop (no files written)."""
