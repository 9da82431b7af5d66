"""Media and file IO: PyAV video/audio decode and encode, atomic file writes."""
