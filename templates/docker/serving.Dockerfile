# detectctl's own serving image: algorithm/serve.py (GET /ping, POST /invocations on port 8080)
# on a SageMaker PyTorch inference image, with no TorchServe and no inference toolkit involved.
#
# Build it from the repository root and push it to ECR (docs/images.md), then deploy with it:
#   docker build -f templates/docker/serving.Dockerfile -t detectctl-serve:2.6.0-cpu .
#   detectctl deploy JOB --instance ml.c5.xlarge --image ACCOUNT.dkr.ecr.REGION.amazonaws.com/detectctl-serve:2.6.0-cpu
#
# BASE is the framework image for the instances that serve, one per GPU generation (and one for
# CPU instances) as detectctl's instance catalog maps them (`detectctl instances`; tests/images
# checks this list against detectctl/data/framework_images.json):
#   pytorch-inference:2.6.0-cpu-py312   c5, c6i, c7i, m5, m6i, m7i
#   pytorch-inference:2.6.0-gpu-py312   g4dn, g5, g6, p3, p3dn, p4d, p5
#   pytorch-inference:1.12.1-gpu-py38   p2
# REGISTRY is the framework images' ECR registry in the region you build in (763104351884 in
# most regions; `detectctl instances --region REGION` prints the full URIs).
ARG REGISTRY=763104351884.dkr.ecr.us-east-1.amazonaws.com
ARG BASE=pytorch-inference:2.6.0-cpu-py312
FROM ${REGISTRY}/${BASE}

COPY algorithm /opt/detectctl/algorithm
WORKDIR /opt/detectctl
ENV PYTHONPATH=/opt/detectctl${PYTHONPATH:+:$PYTHONPATH} \
    PYTHONUNBUFFERED=1
EXPOSE 8080

# SageMaker starts a serving container as `docker run IMAGE serve`: with this entry point that
# is `python -m algorithm.serve serve`, which listens on 0.0.0.0:8080 (SAGEMAKER_BIND_TO_PORT
# if set) and loads the model SageMaker unpacked into /opt/ml/model. Batching, queue and
# timeouts come from DETECTCTL_SERVE_* variables (docs/serving.md).
ENTRYPOINT ["python", "-m", "algorithm.serve"]
CMD ["serve"]
