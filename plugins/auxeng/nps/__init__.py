"""NPS: the maths, the counting queries, weekly snapshots, the trend chart and the stakeholder digest."""
