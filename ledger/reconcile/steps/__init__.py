"""One module per step of a job's way through its provider; the engine's `STEPS` table says which
step each state takes. Every step is `step(context, lease, job) -> StepOutcome`."""
