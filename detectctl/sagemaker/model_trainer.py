"""A SageMaker training plan as the sagemaker SDK's ``ModelTrainer`` (3.x), configured the same
way: image, the same source archive, hyperparameters, channels, distribution, resources,
stopping, networking, checkpoints, output, tags and metric definitions.

    >>> plan = session.plan(instance_type="ml.p3.8xlarge", instance_count=2,
    ...                     train="s3://bucket/voc/train/", hyperparameters={"num_classes": 20})
    ... # doctest: +SKIP
    >>> trainer = session.model_trainer(plan)                            # doctest: +SKIP
    >>> trainer.train(wait=False)                                        # doctest: +SKIP

The sagemaker SDK is imported only when this is called (see :mod:`detectctl.sagemaker.bridge`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from detectctl.aws.requests import CODE_CHANNEL
from detectctl.errors import UsageError
from detectctl.sagemaker.bridge import import_sagemaker, sagemaker_session
from detectctl.sagemaker.training import TrainingPlan, upload_once

if TYPE_CHECKING:
    from detectctl.session import Session


def model_trainer(session: Session, plan: Any,
                  confirm: Callable[[str], bool] = lambda question: True) -> Any:
    """``plan`` (a SageMaker :class:`~detectctl.sagemaker.training.TrainingPlan`) as a
    ``sagemaker.train.ModelTrainer``; ``trainer.train()`` then starts the job.

    What detectctl's own launch does first is done now: the bucket created if missing (asking
    ``confirm``), the source archive (the trainer's ``source_dir``) and torchvision's weights
    for the ``pretrained`` channel uploaded once per content hash. What differs from the job
    detectctl would create: the code reaches the container the ModelTrainer way (the ``code``
    channel and the SDK's ``sm_drivers``, started by its ``sm_train.sh``, under ``torchrun``
    for multi-GPU jobs) instead of the PyTorch toolkit's ``sagemaker_program``; the name is the
    SDK's (``base_job_name`` plus a timestamp); SageMaker's metrics time series stays off (the
    trainer has no setting for it).
    """
    if not isinstance(plan, TrainingPlan):
        raise UsageError(f"a ModelTrainer runs SageMaker jobs; this plan is for the "
                         f"{plan.backend} backend",
                         hint="plan the job with a SageMaker instance type")
    if plan.placeholders:
        raise UsageError("this plan was made offline and has placeholders: "
                         + ", ".join(plan.placeholders), hint="plan it again without offline")
    train = import_sagemaker("sagemaker.train")
    configs = import_sagemaker("sagemaker.core.training.configs")
    spec = plan.spec

    bucket = session.ensure_bucket(confirm)
    upload_once(session, bucket, plan.archive.key(), plan.archive.data, "application/gzip")
    if plan.weights is not None and plan.weights.path is not None:
        upload_once(session, plan.weights.bucket, plan.weights.key, plan.weights.path,
                    "application/octet-stream")

    request = plan.request
    algorithm = request["AlgorithmSpecification"]
    distributed = None
    if spec.torch_distributed:
        distributed = import_sagemaker("sagemaker.train.distributed").Torchrun()
    networking = None
    if spec.subnets or spec.network_isolation or spec.encrypt_inter_container:
        networking = configs.Networking(
            subnets=list(spec.subnets) or None,
            security_group_ids=list(spec.security_groups) or None,
            enable_network_isolation=spec.network_isolation,
            enable_inter_container_traffic_encryption=spec.encrypt_inter_container)
    stopping = request["StoppingCondition"]
    checkpoints = request.get("CheckpointConfig")
    trainer = train.ModelTrainer(
        sagemaker_session=sagemaker_session(session),
        role=spec.role,
        base_job_name=plan.base_name or spec.name,
        training_image=spec.image,
        training_input_mode=spec.input_mode,
        source_code=configs.SourceCode(source_dir=plan.archive.uri(bucket),
                                       entry_script=spec.entry_point),
        distributed=distributed,
        compute=configs.Compute(instance_type=spec.instance_type,
                                instance_count=spec.instance_count,
                                volume_size_in_gb=spec.volume_size_gb,
                                enable_managed_spot_training=spec.spot or None),
        networking=networking,
        stopping_condition=configs.StoppingCondition(
            max_runtime_in_seconds=stopping["MaxRuntimeInSeconds"],
            max_wait_time_in_seconds=stopping.get("MaxWaitTimeInSeconds")),
        hyperparameters={k: v for k, v in request["HyperParameters"].items()
                         if not k.startswith("sagemaker_")},
        input_data_config=[_channel(configs, channel) for channel in request["InputDataConfig"]
                           if channel["ChannelName"] != CODE_CHANNEL],
        output_data_config=configs.OutputDataConfig(
            s3_output_path=request["OutputDataConfig"]["S3OutputPath"]),
        checkpoint_config=configs.CheckpointConfig(
            s3_uri=checkpoints["S3Uri"], local_path=checkpoints["LocalPath"])
        if checkpoints else None,
        tags=[configs.Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]],
    )
    return trainer.with_metric_definitions([
        configs.MetricDefinition(name=d["Name"], regex=d["Regex"])
        for d in algorithm["MetricDefinitions"]])


def _channel(configs: Any, channel: dict[str, Any]) -> Any:
    """One CreateTrainingJob channel (as :mod:`detectctl.aws.requests` builds it) as
    sagemaker-core's ``Channel``."""
    source = channel["DataSource"]["S3DataSource"]
    return configs.Channel(
        channel_name=channel["ChannelName"],
        data_source=configs.DataSource(s3_data_source=configs.S3DataSource(
            s3_data_type=source["S3DataType"], s3_uri=source["S3Uri"],
            s3_data_distribution_type=source["S3DataDistributionType"],
            attribute_names=source.get("AttributeNames"))),
        content_type=channel.get("ContentType"),
        record_wrapper_type=channel.get("RecordWrapperType"),
        input_mode=channel.get("InputMode"),
    )
