"""The thin interface: the HTTP API and the CLI. They parse, call the application, map errors."""
