"""AWS errors in the user's words: which IAM action is missing, which quota to raise.

``translated(service, operation)`` wraps every call the adaptor sends; botocore's exceptions
become detectctl's (see :mod:`detectctl.errors`), each with a hint saying what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from detectctl.errors import (
    AccessDeniedError,
    AwsError,
    AwsValidationError,
    ConfigError,
    CredentialsError,
    NotFoundError,
    QuotaExceededError,
    ThrottlingError,
)

# The IAM action prefix of each boto3 service name.
IAM_PREFIX = {"sagemaker-runtime": "sagemaker", "service-quotas": "servicequotas"}

# S3 operations authorised by an IAM action of another name.
S3_ACTIONS = {
    "HeadObject": "GetObject", "HeadBucket": "ListBucket", "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload",
    "GetBucketLocation": "GetBucketLocation",
}

ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                 "Forbidden", "403"}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
REJECTED = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
            "InvalidAccessKeyId", "InvalidToken"}
THROTTLED = {"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
             "TooManyRequestsException", "SlowDown", "RequestThrottled"}
NOT_FOUND = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey",
             "NoSuchEntity", "404", "NotFound"}
NOT_FOUND_WORDS = ("not found", "could not find", "does not exist")

REFRESH_HINT = ("refresh them: `aws sso login` (add --profile NAME), or renew "
                "AWS_SESSION_TOKEN / the profile's credentials")


def iam_action(service: str, operation: str) -> str:
    """``sagemaker:CreateTrainingJob`` from ``("sagemaker", "CreateTrainingJob")``."""
    prefix = IAM_PREFIX.get(service, service)
    if prefix == "s3":
        operation = S3_ACTIONS.get(operation, operation)
    return f"{prefix}:{operation}"


def from_client_error(service: str, operation: str, error: dict[str, Any]) -> AwsError:
    """The detectctl exception for a botocore ``ClientError``'s ``response["Error"]``."""
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message") or "").strip()
    where = f"{operation}: "
    if code in ACCESS_DENIED:
        named = re.search(r"perform: (\S+:\S+)", message)
        action = named.group(1) if named else iam_action(service, operation)
        return AccessDeniedError(
            f"{where}access denied: the credentials lack {action}", action=action, code=code,
            operation=operation,
            hint=f"add {action} to the IAM policy of the user or role you run as")
    if code == "ResourceLimitExceeded":
        named = re.search(r"limit '([^']+)'", message)
        quota = named.group(1) if named else None
        what = f"quota '{quota}'" if quota else "an account quota"
        return QuotaExceededError(
            f"{where}{what} is too low: {message}", quota=quota, code=code, operation=operation,
            hint="request an increase in the Service Quotas console (Amazon SageMaker) or with "
                 "`aws service-quotas request-service-quota-increase --service-code sagemaker`; "
                 "`detectctl doctor --instance TYPE` shows the current value")
    if code in EXPIRED:
        return CredentialsError(f"{where}AWS credentials have expired", code=code,
                                operation=operation, hint=REFRESH_HINT)
    if code in REJECTED:
        return CredentialsError(f"{where}AWS rejected the credentials ({code})", code=code,
                                operation=operation, hint=REFRESH_HINT)
    if code in THROTTLED:
        return ThrottlingError(
            f"{where}AWS is throttling requests and retries did not get through", code=code,
            operation=operation, hint="try again in a minute, or set AWS_RETRY_MODE=adaptive "
                                      "and a higher AWS_MAX_ATTEMPTS")
    if code in NOT_FOUND or (code.startswith("Validation")
                             and any(w in message.lower() for w in NOT_FOUND_WORDS)):
        return NotFoundError(f"{where}{message or 'not found'}", code=code, operation=operation)
    if code.startswith("Validation") or code == "InvalidParameterException":
        named = re.search(r"at '([^']+)'", message)
        field = named.group(1) if named else None
        text = f"{where}invalid {field}: {message}" if field else f"{where}{message}"
        return AwsValidationError(text, field=field, code=code, operation=operation)
    return AwsError(f"{where}{code}: {message}" if message else f"{where}{code}", code=code,
                    operation=operation)


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    """Re-raise botocore's exceptions from the block as detectctl's."""
    from botocore import exceptions as bx

    try:
        yield
    except bx.ClientError as exc:
        name = exc.operation_name or operation
        raise from_client_error(service, name, exc.response.get("Error", {})) from exc
    except bx.NoCredentialsError:
        raise CredentialsError(
            "no AWS credentials found",
            hint="run `aws configure` or `aws sso login`, or set AWS_PROFILE") from None
    except (bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError):
        raise CredentialsError("the AWS SSO session has expired", hint=REFRESH_HINT) from None
    except bx.PartialCredentialsError as exc:
        raise CredentialsError(f"incomplete AWS credentials: {exc}") from None
    except bx.NoRegionError:
        raise ConfigError(
            "no AWS region configured",
            hint="pass --region, set AWS_REGION, or run `aws configure set region REGION`"
        ) from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
        raise AwsError(f"cannot reach AWS: {exc}",
                       hint="check the network, the region and AWS_ENDPOINT_URL") from None
    except bx.ParamValidationError as exc:
        raise AwsValidationError(f"{operation}: {exc}".replace("\n", " ")) from None
