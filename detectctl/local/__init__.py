"""The local backend: training jobs (and, later, endpoints) on this machine, no AWS account."""
