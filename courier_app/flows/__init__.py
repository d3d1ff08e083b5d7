"""Plain-Python state of each courier flow; views only render these and forward taps."""
