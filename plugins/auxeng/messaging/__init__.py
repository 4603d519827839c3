"""Messages before they are sent: the outbox, planning, rendering, send windows, signed links, opt-outs."""
