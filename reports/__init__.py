"""Report layer: the only code that writes files (run folders, tables, plots)."""
