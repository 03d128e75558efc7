"""Synchronous chat: the request and result types every chat client speaks, and `chat_batch`."""
