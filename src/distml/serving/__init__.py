"""Model selection, weight averaging and serving (KServe InferenceService or the local model server)."""
