"""One module per group of endpoints; each route names its operation and calls one service."""
