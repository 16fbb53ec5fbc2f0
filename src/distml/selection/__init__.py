"""Model selection (best by a named metric) and weight averaging of same-architecture models."""
