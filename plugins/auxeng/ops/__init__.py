"""For operators: failure alerts and the CLI's reports."""
