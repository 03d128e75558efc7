"""What a request costs: token counting (tiktoken, offline) and the batch price table."""
