"""Search stages shared by the search chapters: query understanding first (product search, video search)."""
