"""The LLM gateway: routes of protocol llm (front doors, providers, translation, guards, budgets)."""
