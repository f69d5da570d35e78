"""Fine-tuning and evaluation: data, sampling, the training loop, metrics and reports."""
