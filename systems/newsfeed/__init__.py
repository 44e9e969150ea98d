"""News feed (design-chapters/mlsd-newsfeed.md)."""
