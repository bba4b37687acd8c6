"""Foundation: configs, data, models, the trainer, the result store, sweeps, devices and paths."""
