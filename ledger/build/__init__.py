"""Input -> shards -> a run recorded `built`: reading rows, building request bodies, streaming them
into shard files within the provider's limits, and recording the run and its jobs."""
