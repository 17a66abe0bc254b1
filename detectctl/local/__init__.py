"""The local backend: training jobs (and endpoints) as processes on this machine, under the
same container and serving contracts as on SageMaker. No AWS account, no Docker."""
