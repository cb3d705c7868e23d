"""Measurements. Each function returns records (frozen dataclasses / DataFrame rows); no files, no printing."""
