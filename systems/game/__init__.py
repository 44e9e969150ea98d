"""Game recommendation (design-chapters/mlsd-game-recom.md)."""
