"""citebot's index: sources to articles to passages, embedded into Chroma, and retrieval."""
