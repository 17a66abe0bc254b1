"""``detectctl doctor``: is this account ready to train and serve? Each check says OK, or what to
fix: credentials, region, execution role (exists, trusts SageMaker, may use the bucket), bucket,
and the SageMaker service quota for an instance type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import unquote

from detectctl import instances
from detectctl.errors import AccessDeniedError, DetectctlError, NotFoundError

if TYPE_CHECKING:
    from detectctl.session import Session

OK, WARN, FAIL = "ok", "warn", "fail"
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetObject", "s3:PutObject")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _failed(name: str, exc: DetectctlError, fix: str = "") -> Check:
    return Check(name, FAIL, exc.message, exc.hint or fix)


def trusts_sagemaker(policy: Any) -> bool:
    """Whether a role's trust policy lets SageMaker assume it."""
    if isinstance(policy, str):
        import json

        policy = json.loads(unquote(policy))
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if SAGEMAKER_PRINCIPAL in services and ("sts:AssumeRole" in actions or "sts:*" in actions):
            return True
    return False


def quota_name(instance_type: str, usage: str) -> str:
    return f"{instance_type} for {usage} usage"


def check_credentials(session: Session) -> Check:
    try:
        identity = session.identity
    except DetectctlError as exc:
        return _failed("credentials", exc)
    return Check("credentials", OK, f"{identity['Arn']} (account {identity['Account']})")


def check_region(session: Session) -> Check:
    try:
        return Check("region", OK, session.region)
    except DetectctlError as exc:
        return _failed("region", exc)


def check_role(session: Session) -> Check:
    try:
        role = session.role
    except DetectctlError as exc:
        return _failed("role", exc)
    name = role.rsplit("/", 1)[-1]
    try:
        found = session.aws.call("iam", "get_role", RoleName=name)["Role"]
    except NotFoundError:
        return Check("role", FAIL, f"{role} does not exist",
                     "create it: templates/sagemaker-execution-role.yaml (docs/aws.md)")
    except AccessDeniedError as exc:
        return Check("role", WARN, f"{role} (not inspected: {exc.message})", exc.hint or "")
    except DetectctlError as exc:
        return _failed("role", exc)
    if not trusts_sagemaker(found.get("AssumeRolePolicyDocument", {})):
        return Check("role", FAIL, f"{role} does not trust {SAGEMAKER_PRINCIPAL}",
                     f"add {SAGEMAKER_PRINCIPAL} as a principal allowed sts:AssumeRole in the "
                     "role's trust policy")
    return Check("role", OK, f"{role}, trusted by SageMaker")


def check_role_bucket_access(session: Session) -> Check:
    try:
        role, bucket = session.role, session.bucket
        result = session.aws.call(
            "iam", "simulate_principal_policy", PolicySourceArn=role,
            ActionNames=list(BUCKET_ACTIONS),
            ResourceArns=[f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])
    except DetectctlError as exc:
        return Check("role and bucket", WARN, f"not checked: {exc.message}",
                     "grant iam:SimulatePrincipalPolicy to check, or check the role's policy")
    denied = sorted({r["EvalActionName"] for r in result.get("EvaluationResults", [])
                     if r.get("EvalDecision") != "allowed"})
    if denied:
        return Check("role and bucket", FAIL, f"the role may not {', '.join(denied)} on "
                     f"s3://{bucket}", f"allow {', '.join(denied)} on arn:aws:s3:::{bucket} and "
                     f"arn:aws:s3:::{bucket}/* in the role's policy")
    return Check("role and bucket", OK, f"the role may read and write s3://{bucket}")


def check_bucket(session: Session) -> Check:
    try:
        bucket = session.bucket
        if not session.bucket_exists(bucket):
            return Check("bucket", WARN, f"s3://{bucket} does not exist yet",
                         "detectctl train and dataset upload offer to create it")
        location = session.aws.call("s3", "get_bucket_location", Bucket=bucket)
    except DetectctlError as exc:
        return _failed("bucket", exc)
    where = location.get("LocationConstraint") or "us-east-1"
    if where != session.region:
        return Check("bucket", WARN, f"s3://{bucket} is in {where}, not {session.region}",
                     "SageMaker reads data across regions slowly and at a cost; use a bucket "
                     "in the job's region")
    return Check("bucket", OK, f"s3://{bucket} ({where})")


def check_quota(session: Session, instance_type: str, count: int = 1,
                spot: bool = False) -> Check:
    try:
        instance = instances.get(instance_type)
    except DetectctlError as exc:
        return _failed("quota", exc)
    usage = ("spot training job" if spot else "training job") if instance.can_train else "endpoint"
    wanted = quota_name(instance.name, usage)
    try:
        quotas = session.aws.paginate("service-quotas", "list_service_quotas", "Quotas",
                                      ServiceCode="sagemaker")
        value: Optional[float] = next((q["Value"] for q in quotas if q["QuotaName"] == wanted),
                                      None)
    except DetectctlError as exc:
        return Check("quota", WARN, f"'{wanted}' not checked: {exc.message}",
                     exc.hint or "grant servicequotas:ListServiceQuotas to check")
    fix = ("request an increase: Service Quotas console > Amazon SageMaker > "
           f"'{wanted}', or `aws service-quotas request-service-quota-increase "
           "--service-code sagemaker --quota-code CODE --desired-value N`")
    if value is None:
        return Check("quota", WARN, f"'{wanted}' not found (default quota applies)", fix)
    if value < count:
        return Check("quota", FAIL, f"'{wanted}' is {value:g}, {count} needed", fix)
    return Check("quota", OK, f"'{wanted}' is {value:g}")


def run(session: Session, *, instance_type: Optional[str] = None, count: int = 1,
        spot: bool = False) -> list[Check]:
    """Every check, in order; without credentials or a region the rest cannot run."""
    checks = [check_credentials(session), check_region(session)]
    if any(c.status == FAIL for c in checks):
        return checks
    checks += [check_role(session), check_bucket(session), check_role_bucket_access(session)]
    if instance_type:
        checks.append(check_quota(session, instance_type, count, spot))
    return checks
