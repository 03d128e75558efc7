"""Everything Anthropic: the Message Batches adapter, its request translation and the synchronous
Messages client."""
