"""CloudWatch log streams of SageMaker training jobs, read for :class:`detectctl.logs.JobLogs`.

SageMaker writes one stream per host and container start in ``/aws/sagemaker/TrainingJobs``,
named ``<job>/algo-<N>-<epoch seconds>``. Streams are listed with the DescribeLogStreams
paginator (50 a page) and read with GetLogEvents from their forward token until the token stops
changing (CloudWatch's "no more for now"). Throttling is retried by botocore (adaptive mode);
what still gets through reaches ``JobLogs`` as a ``ThrottlingError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import NotFoundError
from detectctl.logs import LogEvent, host_of

if TYPE_CHECKING:
    from detectctl.aws import Aws

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class CloudWatchStreams:
    """The streams of a CloudWatch log group (training jobs' by default)."""

    def __init__(self, aws: Aws, group: str = LOG_GROUP):
        self.aws = aws
        self.group = group

    def streams(self, job: str) -> list[str]:
        try:
            return [s["logStreamName"] for s in self.aws.paginate(
                "logs", "describe_log_streams", "logStreams",
                logGroupName=self.group, logStreamNamePrefix=job + "/")]
        except NotFoundError:
            return []

    def read(self, stream: str, token: Optional[str], since_ms: Optional[int]
             ) -> tuple[list[LogEvent], Optional[str]]:
        job = stream.split("/", 1)[0]
        host = host_of(stream, job)
        events = []
        while True:
            request: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream,
                                       "startFromHead": True}
            # The same startTime with every token: the token continues that query.
            if since_ms is not None:
                request["startTime"] = since_ms
            if token:
                request["nextToken"] = token
            page = self.aws.call("logs", "get_log_events", **request)
            events += [LogEvent(e["timestamp"], host, stream, e["message"].rstrip("\n"))
                       for e in page.get("events", [])]
            new = page.get("nextForwardToken")
            if not new or new == token:
                return events, token
            token = new
