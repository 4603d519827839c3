"""Three-month check-ins and monthly follow-ups."""
