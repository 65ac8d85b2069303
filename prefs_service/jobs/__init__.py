"""Background work: the broker, the runner and one module of job handlers per domain."""
