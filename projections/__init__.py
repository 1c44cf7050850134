"""Read models: Postgres tables built from the event stream, one projection per view."""
