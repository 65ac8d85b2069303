"""Data-subject rights requests: access, erasure, correction."""
