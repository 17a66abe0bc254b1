# detectctl's own training image: a SageMaker PyTorch training image with algorithm/ inside.
#
# Build it from the repository root and push it to ECR (docs/images.md), then train with it:
#   docker build -f templates/docker/training.Dockerfile -t detectctl-train:2.8.0 .
#   detectctl train --image ACCOUNT.dkr.ecr.REGION.amazonaws.com/detectctl-train:2.8.0 ...
#
# BASE is the framework image for the GPU generation the jobs run on, one per generation as
# detectctl's instance catalog maps them (`detectctl instances --gpu`; tests/images checks this
# list against detectctl/data/framework_images.json):
#   pytorch-training:2.8.0-gpu-py312   g4dn, g5, g6, p3, p3dn, p4d, p5
#   pytorch-training:1.12.1-gpu-py38   p2
# REGISTRY is the framework images' ECR registry in the region you build in (763104351884 in
# most regions; `detectctl instances --region REGION` prints the full URIs).
ARG REGISTRY=763104351884.dkr.ecr.us-east-1.amazonaws.com
ARG BASE=pytorch-training:2.8.0-gpu-py312
FROM ${REGISTRY}/${BASE}

# The base image's entry point stays: SageMaker starts the container with `train`, the PyTorch
# training toolkit's launcher, which runs SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY
# (plainly, or under torchrun for multi-GPU jobs). The code here is what detectctl's source
# archive holds (algorithm/ and its train.py), so the image also runs without the archive; a
# job launched by detectctl names its archive in sagemaker_submit_directory, which the
# toolkit unpacks over /opt/ml/code (the same code, when the image and detectctl match).
COPY algorithm /opt/ml/code/algorithm
COPY templates/docker/train.py /opt/ml/code/train.py
ENV SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/code \
    SAGEMAKER_PROGRAM=train.py \
    PYTHONUNBUFFERED=1
