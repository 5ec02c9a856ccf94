"""Limits that adapt to abuse, the database side of the data plane's counters and sanctions (protocols.abuse): the
ClientWindow rows the workers write, and the table of verdicts and personalized limits they read back."""
