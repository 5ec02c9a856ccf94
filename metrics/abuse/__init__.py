"""Limits that adapt to abuse (issue 18). The database side of the data plane's counters and sanctions
(protocols.abuse): the ClientWindow rows the workers write (windows, flush) and the table of verdicts and
personalized limits they read back (refresh); and the control plane's detection: windows merged into features,
judged against each client's own baseline, the route's population, an isolation forest and abuse signatures
(detection), verdicts recorded, extended and lifted (verdicts), personalized limits learned (limits)."""
