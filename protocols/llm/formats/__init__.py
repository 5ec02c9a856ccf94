"""LLM wire formats and their translation, pure (no I/O): OpenAI chat.completions, Anthropic messages, Ollama chat.

Where to look:
- chat.py: the neutral request, answer and usage every format is parsed into; FormatError (400).
- openai_wire.py, anthropic_wire.py, ollama_wire.py: one format each, requests and non-streamed answers.
- translate.py: the entry points (client request -> provider request, provider answer -> client answer).
- streams.py: streamed answers, OpenAI <-> Anthropic (and Ollama -> either), with stream_readers.py (provider
  events in) and stream_writers.py (client events out); framing.py decodes SSE and NDJSON.
- usage.py: each provider's token usage, read exactly.
- embeddings.py: the /v1/embeddings door (OpenAI-style and Ollama providers; can_serve says who serves what).
- models.py: the /v1/models lists, OpenAI's and Anthropic's (paged), written from the route's targets.
Token counting lives beside this package, in protocols/llm/tokens.py.
"""
