"""``python -m bench --peers``: our metrics path against wandb (offline) and MLflow's tracking server, in one run."""
