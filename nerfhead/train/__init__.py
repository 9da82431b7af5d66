"""Training: data loading, losses, stages, checkpoints."""
