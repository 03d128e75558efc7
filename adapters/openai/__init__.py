"""Everything OpenAI: the Batch API adapter and the synchronous chat client."""
