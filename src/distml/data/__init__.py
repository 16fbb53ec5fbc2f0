"""Datasets: the DeepHealth Toolkit Dataset format, the split engine, sources and synthetic data."""
