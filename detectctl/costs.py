"""What a job or an endpoint costs, from the instance catalog's on-demand list prices.

These are estimates, not bills: prices are those of :data:`detectctl.instances.PRICE_REGION`
(other regions differ by a few percent), and storage, data transfer and taxes are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from detectctl import instances

# Managed spot training typically bills 60-90% less than on demand; the estimate takes 70%.
SPOT_SAVING_ESTIMATE = 0.7


@dataclass(frozen=True)
class TrainingCost:
    """The most a job can cost: hourly price x instances x maximum run time."""

    price_per_hour: float
    instance_count: int
    max_run_seconds: int
    spot: bool

    @property
    def hourly(self) -> float:
        return self.price_per_hour * self.instance_count

    @property
    def bound(self) -> float:
        """On-demand cost if the job runs until its MaxRuntime."""
        return self.hourly * self.max_run_seconds / 3600

    @property
    def spot_estimate(self) -> Optional[float]:
        return self.bound * (1 - SPOT_SAVING_ESTIMATE) if self.spot else None

    def describe(self) -> str:
        hours = self.max_run_seconds / 3600
        text = (f"${self.hourly:,.2f}/hour ({self.instance_count} x ${self.price_per_hour:,.3f}); "
                f"at most ${self.bound:,.2f} for the {hours:g} h limit")
        if self.spot:
            text += f"; with spot about ${self.spot_estimate:,.2f}"
        return text


def training(instance_type: str, instance_count: int, max_run_seconds: int,
             spot: bool = False) -> TrainingCost:
    price = instances.get(instance_type).price_per_hour
    return TrainingCost(price, instance_count, max_run_seconds, spot)


def billed(instance_type: str, instance_count: int, billable_seconds: float) -> float:
    """A finished job's cost: SageMaker's BillableTimeInSeconds is per instance (spot savings
    already in it), billed at the on-demand rate."""
    return instances.get(instance_type).price_per_hour * instance_count * billable_seconds / 3600


def hosting_per_hour(instance_type: str, instance_count: int) -> float:
    return instances.get(instance_type).price_per_hour * instance_count


def money(amount: Optional[float]) -> str:
    return "-" if amount is None else f"${amount:,.2f}"
