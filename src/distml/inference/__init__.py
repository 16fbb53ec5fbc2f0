"""Per-shard inference: backends (ONNX Runtime, ECVL/EDDL), metrics and their gathering."""
