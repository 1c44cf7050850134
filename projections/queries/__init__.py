"""What the interfaces read: the queries over each projection's tables, kept apart from the
handlers that write them (``projections/<name>.py``)."""
