"""AI routing: the LLM provider clients, the routing prompt, and what content-based routing builds on them."""
