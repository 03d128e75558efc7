"""The provider-neutral result: its schema, normalizing a job's downloaded files into it in input
order, exporting a run's results, and retrying what did not succeed."""
