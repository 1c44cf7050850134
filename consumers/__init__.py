"""Reference downstream consumers: how another agency reads our topics from the contract alone."""
