"""The end-of-engagement handover: one message to the host team's manager and tech lead when an
engagement ends (the boundary, where to get help, the check-in date, the goals as recorded)."""
