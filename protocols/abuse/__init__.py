"""Limits that adapt to abuse: a route's `abuse` block, the per-(route, client) counters each gateway process keeps
for the detection task, and the verdicts and personalized limits it applies."""
