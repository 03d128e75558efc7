"""Moving jobs from `built` to `normalized` through their provider: the engine, its steps, sending
a run right after the build, cancelling, and verified downloads."""
