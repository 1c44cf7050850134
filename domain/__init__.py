"""The domain model: aggregates, their events and the rules they enforce. Pure: no I/O."""
