"""Mistral's batch inference (`mistralai` SDK): files, jobs, status words and lines."""
