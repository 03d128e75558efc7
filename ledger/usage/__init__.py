"""Models and what they cost: the model table (limits, sampling rules, batch prices), the
build-time checks against it, token counting (tiktoken, offline) and pricing."""
