"""The lifecycle loop's tick: read the cluster and rows, decide, apply, deliver notices."""
