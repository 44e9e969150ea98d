"""Multimodal video search (design-chapters/mlsd-mm-video-search.md)."""
