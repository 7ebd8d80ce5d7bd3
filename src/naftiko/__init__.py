"""naftiko — serve Naftiko capability files as REST and MCP in front of existing HTTP APIs."""

__version__ = "0.1.0"
