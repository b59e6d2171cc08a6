"""Partner cohort import: parsing, matching, membership bitmaps and history, diagnostics."""
