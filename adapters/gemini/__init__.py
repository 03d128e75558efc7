"""The `gemini` provider: Gemini Batch Mode of the Gemini Developer API (`google-genai` SDK)."""
