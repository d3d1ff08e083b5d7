"""Pure domain shared by the courier app and the server: no I/O, no framework."""
