"""Video recommendation (design-chapters/mlsd-video-recom.md)."""
