"""HTTP API: the only package that imports FastAPI. Routes are thin over `sgt.services`."""
