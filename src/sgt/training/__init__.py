"""Training: the run driver (no database) and the worker loop; with ml/, the only torch users."""
