"""Request builders: pure functions checked by dict equality."""

from __future__ import annotations

from datetime import datetime, timezone

from algorithm.metrics import METRIC_DEFINITIONS as METRICS
from detectctl import __version__, names
from detectctl.aws import requests as r

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312"
SOURCE = "s3://b/detectctl/source/0123456789abcdef/sourcedir.tar.gz"
CREATED_BY = {"Key": "created-by", "Value": f"detectctl {__version__}"}


def spec(**changes) -> r.TrainingJobSpec:
    values = dict(
        name="ssd-job", role="arn:aws:iam::1:role/R", image=IMAGE, region="us-east-1",
        instance_type="ml.p3.8xlarge", instance_count=2,
        hyperparameters={"num_classes": "20", "epochs": "240"},
        channels=(r.ChannelSpec("train", "s3://b/train.rec", "application/x-recordio"),
                  r.ChannelSpec("validation", "s3://b/val.rec", "application/x-recordio")),
        output_path="s3://b/detectctl/jobs", source_uri=SOURCE, torch_distributed=True,
    )
    values.update(changes)
    return r.TrainingJobSpec(**values)


def test_training_job_request_multi_instance_spot_vpc():
    request = r.training_job_request(spec(
        spot=True, max_run_seconds=3600, checkpoint_s3="s3://b/ckpt", subnets=("subnet-1",),
        security_groups=("sg-1",), encrypt_inter_container=True, tags={"team": "vision"}))
    assert request == {
        "TrainingJobName": "ssd-job",
        "RoleArn": "arn:aws:iam::1:role/R",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRICS,
                                   "EnableSageMakerMetricsTimeSeries": True},
        "HyperParameters": {
            "num_classes": "20", "epochs": "240",
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"{SOURCE}"',
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": '"ssd-job"',
            "sagemaker_region": '"us-east-1"',
            "sagemaker_torch_distributed_enabled": "true",
            "sagemaker_instance_type": '"ml.p3.8xlarge"',
        },
        "InputDataConfig": [
            {"ChannelName": "train", "ContentType": "application/x-recordio",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train.rec",
                                             "S3DataDistributionType": "FullyReplicated"}}},
            {"ChannelName": "validation", "ContentType": "application/x-recordio",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/val.rec",
                                             "S3DataDistributionType": "FullyReplicated"}}},
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/detectctl/jobs"},
        "ResourceConfig": {"InstanceType": "ml.p3.8xlarge", "InstanceCount": 2,
                           "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": "s3://b/ckpt", "LocalPath": "/opt/ml/checkpoints"},
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        "Tags": [CREATED_BY, {"Key": "team", "Value": "vision"}],
    }


def test_single_gpu_job_has_no_distribution_and_no_optional_sections():
    request = r.training_job_request(spec(instance_type="ml.g4dn.xlarge", instance_count=1,
                                          torch_distributed=False))
    assert "sagemaker_torch_distributed_enabled" not in request["HyperParameters"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert "CheckpointConfig" not in request and "VpcConfig" not in request


def test_network_isolation_hands_the_code_over_as_a_channel():
    request = r.training_job_request(spec(network_isolation=True))
    assert request["HyperParameters"]["sagemaker_submit_directory"] == (
        '"/opt/ml/input/data/code/sourcedir.tar.gz"')
    assert request["InputDataConfig"][-1] == {
        "ChannelName": "code", "InputMode": "File",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": SOURCE,
                                        "S3DataDistributionType": "FullyReplicated"}}}


def test_augmented_manifest_channel():
    channel = r.ChannelSpec("train", "s3://b/train.manifest", "application/x-recordio",
                            s3_data_type="AugmentedManifestFile", record_wrapper="RecordIO",
                            attribute_names=("source-ref", "bounding-box"))
    assert r.channel_request(channel) == {
        "ChannelName": "train", "ContentType": "application/x-recordio",
        "RecordWrapperType": "RecordIO",
        "DataSource": {"S3DataSource": {
            "S3DataType": "AugmentedManifestFile", "S3Uri": "s3://b/train.manifest",
            "S3DataDistributionType": "FullyReplicated",
            "AttributeNames": ["source-ref", "bounding-box"]}}}


ENDPOINT = r.EndpointSpec(
    endpoint_name="ep", model_name="ep-m", config_name="ep-c", role="arn:aws:iam::1:role/R",
    image="img:2.6.0-cpu-py312", region="eu-west-1", model_data="s3://b/model.tar.gz",
    instance_type="ml.c5.xlarge", instance_count=2)


def test_model_request():
    assert r.model_request(ENDPOINT) == {
        "ModelName": "ep-m", "ExecutionRoleArn": "arn:aws:iam::1:role/R",
        "PrimaryContainer": {
            "Image": "img:2.6.0-cpu-py312", "ModelDataUrl": "s3://b/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                            "SAGEMAKER_REGION": "eu-west-1"}},
        "Tags": [CREATED_BY]}


def test_endpoint_config_and_endpoint_requests():
    assert r.endpoint_config_request(ENDPOINT) == {
        "EndpointConfigName": "ep-c",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "ep-m",
                                "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2,
                                "InitialVariantWeight": 1.0}],
        "Tags": [CREATED_BY]}
    assert r.endpoint_request(ENDPOINT) == {"EndpointName": "ep", "EndpointConfigName": "ep-c",
                                            "Tags": [CREATED_BY]}
    assert r.update_endpoint_request(ENDPOINT) == {"EndpointName": "ep",
                                                   "EndpointConfigName": "ep-c"}


def test_bucket_request_location_constraint():
    assert r.bucket_request("b", "us-east-1") == {"Bucket": "b"}
    assert r.bucket_request("b", "eu-west-1") == {
        "Bucket": "b", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}


def test_unique_name_like_the_sagemaker_sdk():
    when = datetime(2026, 11, 27, 9, 5, 7, 123456, tzinfo=timezone.utc)
    assert names.unique_name("ssd-vgg-16", when) == "ssd-vgg-16-2026-11-27-09-05-07-123"
    long = names.unique_name("x" * 80 + "_bad name", when)
    assert len(long) == 63 and long.endswith("-2026-11-27-09-05-07-123")


def test_a_pipe_mode_job_takes_its_classes_channel_in_file_mode():
    classes = r.ChannelSpec("classes", "s3://b/voc/meta/train/classes.json", "application/json",
                            input_mode="File")
    request = r.training_job_request(spec(
        input_mode="Pipe", channels=(r.ChannelSpec("train", "s3://b/voc/train/data.rec",
                                                   "application/x-recordio"), classes)))
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert request["InputDataConfig"] == [
        {"ChannelName": "train", "ContentType": "application/x-recordio",
         "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                         "S3Uri": "s3://b/voc/train/data.rec",
                                         "S3DataDistributionType": "FullyReplicated"}}},
        {"ChannelName": "classes", "ContentType": "application/json", "InputMode": "File",
         "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                         "S3Uri": "s3://b/voc/meta/train/classes.json",
                                         "S3DataDistributionType": "FullyReplicated"}}}]
