"""Watching a reconciler from outside: Prometheus metrics (`metrics`), JSON log lines (`logs`)
and a command run when a run ends (`ondone`). Each is imported only by the option that wants it;
`prometheus_client` is the optional extra `metrics`."""
