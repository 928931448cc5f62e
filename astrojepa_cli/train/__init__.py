"""Training: the config, the pretraining loop, schedules, checkpoints and distributed setup."""
