"""Where articles come from: file formats, fetching URLs, feeds and sitemaps, the library of
sources an admin added, and reading each source into articles."""
