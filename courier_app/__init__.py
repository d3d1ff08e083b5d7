"""The courier app (Flet). Its layers, each importing only those below it:

    views/       Flet screens in a route table (views/navigation.py), shown by views/shell.py
    context.py   the composition root that builds and wires everything below
    flows/       plain-Python state of each courier task; their I/O comes in as arguments
    session.py   who is signed in · sync.py  outbox → server, with backoff
    api.py       the one typed HTTP client (wire types: shared/api.py) · outbox.py  the SQLite queue

Everything below views/ works without any UI and is tested on its own.
"""
