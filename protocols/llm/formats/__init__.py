"""LLM wire formats and their translation, pure (no I/O): OpenAI chat.completions, Anthropic messages, Ollama chat.

Where to look:
- chat.py: the neutral request, answer and usage every format is parsed into; FormatError (400).
- openai_wire.py, anthropic_wire.py, ollama_wire.py: one format each, requests and non-streamed answers.
- translate.py: the entry points (client request -> provider request, provider answer -> client answer).
- streams.py: streamed answers, OpenAI <-> Anthropic (and Ollama -> either), with stream_readers.py (provider
  events in) and stream_writers.py (client events out); framing.py decodes SSE and NDJSON.
- usage.py: each provider's token usage, read exactly.
Token counting lives beside this package, in protocols/llm/tokens.py.
"""
