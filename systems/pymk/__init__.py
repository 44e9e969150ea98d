"""People you may know (design-chapters/mlsd-pymk.md)."""
