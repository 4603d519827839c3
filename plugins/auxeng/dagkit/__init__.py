"""What the DAG files share: defaults, assets, the run's context, triggers."""
