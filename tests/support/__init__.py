"""Real stand-ins for the services the pack talks to (SMTP, Slack), and their pytest fixtures."""
