"""AWS errors become one actionable line: IAM action, quota, field, how to refresh."""

from __future__ import annotations

import pytest

from detectctl import errors
from detectctl.aws.errors import from_client_error, iam_action, translated


def error(code: str, message: str = "") -> dict:
    return {"Code": code, "Message": message}


def test_access_denied_names_the_action_from_the_message():
    exc = from_client_error("sagemaker", "CreateTrainingJob", error(
        "AccessDeniedException", "User: arn:aws:iam::1:user/u is not authorized to perform: "
        "iam:PassRole on resource: arn:aws:iam::1:role/R"))
    assert isinstance(exc, errors.AccessDeniedError)
    assert exc.action == "iam:PassRole"
    assert str(exc) == ("CreateTrainingJob: access denied: the credentials lack iam:PassRole "
                        "(add iam:PassRole to the IAM policy of the user or role you run as)")


def test_access_denied_derives_the_action_when_the_message_does_not_say():
    exc = from_client_error("s3", "HeadObject", error("403", "Forbidden"))
    assert isinstance(exc, errors.AccessDeniedError) and exc.action == "s3:GetObject"
    assert iam_action("sagemaker-runtime", "InvokeEndpoint") == "sagemaker:InvokeEndpoint"
    assert iam_action("logs", "GetLogEvents") == "logs:GetLogEvents"


def test_resource_limit_names_the_quota_and_how_to_raise_it():
    exc = from_client_error("sagemaker", "CreateTrainingJob", error(
        "ResourceLimitExceeded", "The account-level service limit 'ml.p3.8xlarge for training "
        "job usage' is 0 Instances, with current utilization of 0 Instances and a request delta "
        "of 2 Instances."))
    assert isinstance(exc, errors.QuotaExceededError)
    assert exc.quota == "ml.p3.8xlarge for training job usage"
    assert "request-service-quota-increase" in str(exc)
    assert exc.exit_code == 1


def test_validation_exception_names_the_field_and_exits_2():
    exc = from_client_error("sagemaker", "CreateTrainingJob", error(
        "ValidationException", "1 validation error detected: Value 'bad name' at "
        "'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern"))
    assert isinstance(exc, errors.AwsValidationError)
    assert exc.field == "trainingJobName" and exc.exit_code == 2
    assert str(exc).startswith("CreateTrainingJob: invalid trainingJobName: 1 validation error")


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_say_how_to_refresh(code):
    exc = from_client_error("sts", "GetCallerIdentity", error(code, "The security token "
                                                                    "included in the request "
                                                                    "is expired"))
    assert isinstance(exc, errors.CredentialsError)
    assert "aws sso login" in str(exc)


def test_throttling_and_not_found():
    assert isinstance(from_client_error("logs", "GetLogEvents", error("ThrottlingException")),
                      errors.ThrottlingError)
    missing = from_client_error("sagemaker", "DescribeEndpoint", error(
        "ValidationException", "Could not find endpoint \"x\"."))
    assert isinstance(missing, errors.NotFoundError)
    assert isinstance(from_client_error("s3", "HeadBucket", error("404")), errors.NotFoundError)


def test_botocore_credential_errors_are_translated():
    from botocore.exceptions import NoCredentialsError, NoRegionError

    with pytest.raises(errors.CredentialsError, match="no AWS credentials found"), \
            translated("sts", "GetCallerIdentity"):
        raise NoCredentialsError()
    with pytest.raises(errors.ConfigError, match="no AWS region"), translated("s3", "x"):
        raise NoRegionError()


def test_cli_prints_one_line_and_no_traceback(monkeypatch, capsys):
    from detectctl.cli import main
    from detectctl.session import Session

    def denied(self):
        raise from_client_error("sts", "GetCallerIdentity", error("ExpiredToken"))

    monkeypatch.setattr(Session, "identity", property(denied))
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor"])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  credentials: GetCallerIdentity: AWS credentials have expired")
    assert "Traceback" not in out


def test_cli_error_boundary_exit_codes(monkeypatch, capsys):
    from detectctl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--instance", "ml.c5.xlarge", "--train", "s3://b/t.rec",
              "--hp", "num_classes=3", "--dry-run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ml.c5.xlarge has no GPU")
