"""Merging CloudWatch streams: many hosts, more than 50 streams, following until the job ends."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime, timezone

import boto3
import pytest
from typer.testing import CliRunner

from detectctl.cli.app import app
from detectctl.durations import parse_since
from detectctl.errors import ThrottlingError
from detectctl.logs import JobLogs, host_of
from detectctl.sagemaker.logs import LOG_GROUP, CloudWatchStreams
from tests.aws.support import REGION

JOB = "ssd-job"
T0 = (int(time.time()) - 3600) * 1000


@pytest.fixture
def cw(moto):
    client = boto3.client("logs", region_name=REGION)
    client.create_log_group(logGroupName=LOG_GROUP)
    return client


def put(cw, host: str, events: list[tuple[int, str]], start: int = 1780000000) -> str:
    stream = f"{JOB}/{host}-{start}"
    with contextlib.suppress(cw.exceptions.ResourceAlreadyExistsException):
        cw.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    cw.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                      logEvents=[{"timestamp": T0 + t, "message": m} for t, m in events])
    return stream


def aws():
    from detectctl.aws import Aws

    return Aws(region=REGION)


def test_hosts_are_merged_in_time_order(cw):
    put(cw, "algo-1", [(0, "a0"), (20, "a20"), (40, "a40")])
    put(cw, "algo-2", [(10, "b10"), (20, "b20"), (30, "b30")])
    events = list(JobLogs(CloudWatchStreams(aws()), JOB))
    assert [(e.host, e.message) for e in events] == [
        ("algo-1", "a0"), ("algo-2", "b10"), ("algo-1", "a20"), ("algo-2", "b20"),
        ("algo-2", "b30"), ("algo-1", "a40")]


def test_more_than_fifty_streams_are_all_read(cw):
    for n in range(1, 61):
        put(cw, f"algo-{n}", [(n, f"line from {n}")])
    logs = JobLogs(CloudWatchStreams(aws()), JOB)
    events = list(logs)
    assert logs.stream_count == 60
    assert [e.host for e in events] == [f"algo-{n}" for n in range(1, 61)]


def test_host_filter_and_since(cw):
    put(cw, "algo-1", [(0, "old"), (60_000, "new")])
    put(cw, "algo-2", [(60_000, "other")])
    since = datetime.fromtimestamp((T0 + 30_000) / 1000, tz=timezone.utc)
    events = list(JobLogs(CloudWatchStreams(aws()), JOB, hosts=["algo-1"], since=since))
    assert [e.message for e in events] == ["new"]


def test_follow_reads_only_new_lines_and_drains_when_the_job_ends(cw):
    put(cw, "algo-1", [(0, "epoch 1")])
    statuses = iter(["InProgress", "InProgress", "Completed"])
    arrivals = iter([
        lambda: put(cw, "algo-2", [(5, "late host")]),
        lambda: put(cw, "algo-1", [(50, "final line")]),
    ])
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        next(arrivals)()

    logs = JobLogs(CloudWatchStreams(aws()), JOB, status=lambda: next(statuses), sleep=sleep,
                   poll_seconds=0.01)
    assert [e.message for e in logs] == ["epoch 1", "late host", "final line"]
    assert logs.status == "Completed" and len(sleeps) == 2


def test_follow_waits_for_streams_to_appear(cw):
    statuses = iter(["InProgress", "InProgress", "Failed"])
    waited = []

    def sleep(seconds):
        if waited and not cw.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]:
            put(cw, "algo-1", [(0, "started")])

    logs = JobLogs(CloudWatchStreams(aws()), JOB, status=lambda: next(statuses), sleep=sleep,
                   on_wait=waited.append)
    assert [e.message for e in logs] == ["started"]
    assert waited == ["InProgress"] and logs.status == "Failed"


def test_throttled_poll_backs_off_and_loses_nothing(cw):
    put(cw, "algo-1", [(0, "one"), (1, "two")])
    client = aws()
    real_call = client.call
    throttled = [True]

    def call(service, operation, **request):
        if operation == "get_log_events" and throttled.pop() if throttled else False:
            raise ThrottlingError("slow down")
        return real_call(service, operation, **request)

    client.call = call
    sleeps = []
    logs = JobLogs(CloudWatchStreams(client), JOB, status=lambda: "Completed",
                   sleep=sleeps.append,
                   poll_seconds=1)
    assert [e.message for e in logs] == ["one", "two"]
    assert sleeps == [2]


def test_host_of_and_since_parsing():
    assert host_of(f"{JOB}/algo-12-1780000000", JOB) == "algo-12"
    now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    assert parse_since("10m", now) == datetime(2026, 11, 27, 11, 50, tzinfo=timezone.utc)
    assert parse_since("2026-11-27T10:00", now) == datetime(2026, 11, 27, 10, tzinfo=timezone.utc)


def test_logs_command_prefixes_each_line_with_its_host(cw, session):
    from tests.aws.support import BUCKET

    session.launch(session.plan(
        instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec",
        hyperparameters={"num_classes": 2}, name=JOB))
    put(cw, "algo-1", [(0, "#quality_metric: host=algo-1, epoch=0, validation mAP <score>=(0.5)")])
    put(cw, "algo-2", [(1, "ready\n")])
    result = CliRunner().invoke(app, ["logs", JOB])
    assert result.exit_code == 0, result.output
    assert result.stdout == ("[algo-1] #quality_metric: host=algo-1, epoch=0, validation mAP "
                             "<score>=(0.5)\n[algo-2] ready\n")
    followed = CliRunner().invoke(app, ["logs", JOB, "--follow", "--json", "--host", "algo-2"])
    assert followed.exit_code == 0, followed.output
    line, end = (json.loads(line) for line in followed.stdout.splitlines())
    assert line["host"] == "algo-2" and line["message"] == "ready"
    assert (end["event"], end["job"], end["status"]) == ("end", JOB, "Completed")
