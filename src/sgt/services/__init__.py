"""Use cases: each public function is one thing a user or admin does, over storage and ml."""
