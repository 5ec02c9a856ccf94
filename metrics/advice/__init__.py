"""Advice with evidence: rules over the stored series that say what to change in a route, show the figures that
led to it and a draft change validated like the API's, applied only when an operator clicks Apply.

Modules by role: `series` reads the stored points, `context` gathers what every rule reads once, the rule modules
(`balancing`, `timeouts`, `breakers`, `limits`, `caching`, `capacity`) each return findings, `forecast` is the
Holt-Winters model capacity uses, `drafts` validates a draft and computes its diff, `engine` runs everything,
`phrasing` asks the gateway-wide LLM to word a finding, `apply` applies one through routes.services.
"""
