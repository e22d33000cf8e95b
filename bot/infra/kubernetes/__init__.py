"""The cluster: client, watch cache, templates; the only home of the kubernetes libraries."""
