"""The SageMaker backend: training jobs, logs and endpoints on SageMaker, S3 and CloudWatch.

Every AWS call goes through :mod:`detectctl.aws`; requests are built by the pure functions of
:mod:`detectctl.aws.requests`.
"""
