"""Post-engagement surveys: the questions, invitations and reminders, answers."""
