"""What can be bought: services, resource kinds and their priced meters (SKUs).

Prices are public on-demand list prices (USD, us-east-1 / us-central1 / East US) rounded
to what the price pages show. A resource kind has one or more variants (instance types,
disk classes) and each variant a tuple of meters; one demo billing line is one meter of
one resource, one row per day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

import numpy as np

from collectors.demo.org import Provider


class Profile(IntEnum):
    """How a meter's daily quantity moves through the week and over the months."""

    ALWAYS_ON = 0  # runs all day, every day: a fixed number of hours
    FLEET = 1  # autoscaled nodes: fewer hours at weekends
    STORAGE = 2  # grows smoothly, no weekly cycle
    INTERACTIVE = 3  # queries run by people: weekday peaks, a deep weekend trough
    BATCH = 4  # scheduled jobs: a mild weekend dip
    TRAFFIC = 5  # end-user traffic and data transfer: a modest weekend dip


# Rows: Profile; columns: Monday..Sunday.
WEEKLY: Final = np.array(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0, 1.0, 0.96, 0.68, 0.64],
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [1.08, 1.14, 1.12, 1.08, 0.96, 0.36, 0.3],
        [1.0, 1.02, 1.02, 1.0, 1.0, 0.82, 0.8],
        [1.0, 1.04, 1.04, 1.02, 0.97, 0.66, 0.62],
    ],
    dtype=np.float64,
)
# Day-to-day spread (sd of the log) per profile.
NOISE: Final = np.array([0.0, 0.05, 0.004, 0.22, 0.12, 0.07], dtype=np.float64)


@dataclass(frozen=True)
class Meter:
    meter: str  # SkuMeter
    description: str  # ChargeDescription
    consumed_unit: str
    pricing_unit: str
    price: float  # list price per pricing unit, USD
    qty: float  # consumed units per resource-day at size 1
    profile: Profile
    block: float = 1.0  # consumed units per pricing unit
    # The quantity is a monthly amount (GB-months, disk-months) spread over the days.
    per_month: bool = False
    # A discount row (ChargeCategory Credit): negative price, no list cost.
    credit: bool = False
    # The quantity follows the resource's size (GB stored, TB scanned); False for meters
    # counting whole things (a managed disk is one disk, whatever its usage).
    sized: bool = True


@dataclass(frozen=True)
class Kind:
    key: str
    provider: Provider
    service: str
    category: str
    subcategory: str
    resource_type: str | None
    # ResourceId pattern; placeholders: region acct project sub rg zone name hex8 hex16
    # hex17 hex32 upper13 digits. None: the charge has no resource (data transfer).
    id_style: str | None
    variants: Mapping[str, tuple[Meter, ...]]
    # What inventory.csv calls it; None: not a right-sizing candidate.
    inventory_type: str | None = None
    details: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def hourly_list_price(self, variant: str, size: float = 1.0) -> float:
        """On-demand cost of one resource-hour: what an idle one wastes. Counts what is
        paid for by the hour or by the month (a disk's capacity), not usage."""
        total = 0.0
        for m in self.variants[variant]:
            if m.credit:
                continue
            if m.profile == Profile.ALWAYS_ON:
                total += m.price * m.qty / m.block / 24
            elif m.per_month and m.profile == Profile.STORAGE:
                total += m.price * m.qty * (size if m.sized else 1.0) / m.block / 730
        return total

    def size_gb(self, variant: str, size: float) -> float | None:
        """Provisioned capacity of a disk or volume."""
        if self.key == "disk":
            return float(self.details[variant]["SizeGiB"])
        if self.key in {"ebs", "pd"}:
            return round(self.variants[variant][0].qty * size, 1)
        return None


def sku_id(provider: Provider, text: str) -> str:
    """A stable SKU identifier in the provider's own format."""
    digest = hashlib.sha256(f"{provider}:{text}".encode()).hexdigest().upper()
    if provider == "aws":
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        return "".join(alphabet[int(digest[i : i + 2], 16) % 32] for i in range(0, 32, 2))
    if provider == "gcp":
        return f"{digest[:4]}-{digest[4:8]}-{digest[8:12]}"
    d = digest.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"


def sku_price_id(provider: Provider, sku: str, text: str) -> str:
    digest = hashlib.sha256(f"price:{text}".encode()).hexdigest().upper()
    if provider == "aws":
        return f"{sku}.JRTCKXETXF.{digest[:10]}"
    if provider == "gcp":
        return f"{sku}-{digest[:6]}"
    return f"{digest[:12]}/{digest[12:16]}"


H = Profile.ALWAYS_ON


def _one(*meters: Meter) -> dict[str, tuple[Meter, ...]]:
    return {"default": meters}


# ---- AWS ---------------------------------------------------------------------------
EC2_TYPES: Final = {
    # type: (vCPU, GiB, $/hour)
    "t3.large": (2, 8, 0.0832),
    "m6i.xlarge": (4, 16, 0.192),
    "m6i.2xlarge": (8, 32, 0.384),
    "m6i.4xlarge": (16, 64, 0.768),
    "m6i.8xlarge": (32, 128, 1.536),
    "m7g.2xlarge": (8, 32, 0.3264),
    "c6i.xlarge": (4, 8, 0.17),
    "c6i.2xlarge": (8, 16, 0.34),
    "c6i.4xlarge": (16, 32, 0.68),
    "c6i.8xlarge": (32, 64, 1.36),
    "r6i.2xlarge": (8, 64, 0.504),
    "r6i.4xlarge": (16, 128, 1.008),
    "g5.2xlarge": (8, 32, 1.212),
    "g5.12xlarge": (48, 192, 5.672),
    "p3.8xlarge": (32, 244, 12.24),
}
RDS_TYPES: Final = {
    "db.m6g.large": (2, 8, 0.152),
    "db.r6g.xlarge": (4, 32, 0.43),
    "db.r6g.2xlarge": (8, 64, 0.86),
    "db.r6g.4xlarge": (16, 128, 1.72),
}


def _ec2_meters(itype: str) -> tuple[Meter, ...]:
    price = EC2_TYPES[itype][2]
    return (Meter(f"{itype} Instance Hours", f"${price} per On Demand Linux {itype} Instance Hour",
                  "Hours", "Hours", price, 24.0, H),)


def _rds_meters(itype: str) -> tuple[Meter, ...]:
    price = RDS_TYPES[itype][2]
    return (
        Meter(f"{itype} Instance Hours",
              f"${price} per RDS {itype} Single-AZ instance hour running PostgreSQL",
              "Hours", "Hours", price, 24.0, H),
        Meter("GP3 Storage", "$0.115 per GB-month of provisioned gp3 storage running PostgreSQL",
              "GB-Months", "GB-Months", 0.115, 400.0, Profile.STORAGE, per_month=True),
    )


def _type_details(types: Mapping[str, tuple[int, int, float]], os_name: str
                  ) -> dict[str, dict[str, str]]:
    return {
        t: {"InstanceType": t, "vCPU": str(v), "MemoryGiB": str(g), "OperatingSystem": os_name}
        for t, (v, g, _) in types.items()
    }


AWS_KINDS: Final = (
    Kind("ec2", "aws", "Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "Instance",
         "i-{hex17}", {t: _ec2_meters(t) for t in EC2_TYPES}, "ec2_instance",
         _type_details(EC2_TYPES, "Linux")),
    Kind("ebs", "aws", "Amazon Elastic Compute Cloud", "Storage", "Block Storage", "Volume",
         "vol-{hex17}",
         {
             "gp3": (Meter("gp3 Storage", "$0.08 per GB-month of General Purpose (gp3) provisioned "
                           "storage", "GB-Months", "GB-Months", 0.08, 500.0, Profile.STORAGE,
                           per_month=True),),
             "gp2": (Meter("gp2 Storage", "$0.10 per GB-month of General Purpose SSD (gp2) "
                           "provisioned storage", "GB-Months", "GB-Months", 0.10, 500.0,
                           Profile.STORAGE, per_month=True),),
         }, "ebs_volume"),
    Kind("s3", "aws", "Amazon Simple Storage Service", "Storage", "Object Storage", "Bucket",
         "{name}", _one(
             Meter("Standard Storage", "$0.023 per GB - first 50 TB / month of storage used",
                   "GB-Months", "GB-Months", 0.023, 25_000.0, Profile.STORAGE, per_month=True),
             Meter("Requests-Tier1", "$0.005 per 1,000 PUT, COPY, POST, or LIST requests",
                   "Requests", "1000 Requests", 0.005, 1_500_000.0, Profile.BATCH, block=1000),
             Meter("Requests-Tier2", "$0.0004 per 1,000 GET and all other requests",
                   "Requests", "1000 Requests", 0.0004, 20_000_000.0, Profile.INTERACTIVE,
                   block=1000),
         )),
    Kind("rds", "aws", "Amazon Relational Database Service", "Databases", "Relational Databases",
         "DB Instance", "arn:aws:rds:{region}:{acct}:db:{name}",
         {t: _rds_meters(t) for t in RDS_TYPES}, "rds_instance",
         _type_details(RDS_TYPES, "PostgreSQL")),
    Kind("athena", "aws", "Amazon Athena", "Analytics", "Data Processing", "Workgroup",
         "arn:aws:athena:{region}:{acct}:workgroup/{name}", _one(
             Meter("Data Scanned", "$5.00 per Terabytes for DataScannedInTB in US East "
                   "(N. Virginia)", "TB", "TB", 5.0, 1.6, Profile.INTERACTIVE),
         )),
    Kind("glue", "aws", "AWS Glue", "Analytics", "Data Processing", "Job",
         "arn:aws:glue:{region}:{acct}:job/{name}", _one(
             Meter("ETL Job DPU-Hours", "$0.44 per DPU-Hour for each Apache Spark or Spark "
                   "Streaming job", "DPU-Hours", "DPU-Hours", 0.44, 90.0, Profile.BATCH),
         )),
    Kind("lambda", "aws", "AWS Lambda", "Compute", "Serverless Compute", "Function",
         "arn:aws:lambda:{region}:{acct}:function:{name}", _one(
             Meter("Compute GB-Seconds", "AWS Lambda - Total Compute - US East (N. Virginia)",
                   "GB-Seconds", "GB-Seconds", 0.0000166667, 2_500_000.0, Profile.TRAFFIC),
             Meter("Requests", "AWS Lambda - Total Requests - US East (N. Virginia)",
                   "Requests", "1M Requests", 0.20, 4_000_000.0, Profile.TRAFFIC,
                   block=1_000_000),
         )),
    Kind("alb", "aws", "Elastic Load Balancing", "Networking", "Network Infrastructure",
         "Load Balancer", "arn:aws:elasticloadbalancing:{region}:{acct}:loadbalancer/app/{name}/"
         "{hex16}", _one(
             Meter("LoadBalancerUsage", "$0.0225 per Application LoadBalancer-hour (or partial "
                   "hour)", "Hours", "Hours", 0.0225, 24.0, H),
             Meter("LCUUsage", "$0.008 per used Application load balancer capacity unit-hour "
                   "(or partial hour)", "LCU-Hours", "LCU-Hours", 0.008, 300.0, Profile.TRAFFIC),
         ), "load_balancer"),
    Kind("cloudfront", "aws", "Amazon CloudFront", "Networking", "Content Delivery",
         "Distribution", "arn:aws:cloudfront::{acct}:distribution/E{upper13}", _one(
             Meter("DataTransfer-Out-Bytes", "$0.085 per GB - first 10 TB / month data transfer "
                   "out beyond the global free tier", "GB", "GB", 0.085, 700.0, Profile.TRAFFIC),
             Meter("Requests-HTTPS", "$0.0100 per 10,000 HTTPS Requests", "Requests",
                   "10000 Requests", 0.01, 25_000_000.0, Profile.TRAFFIC, block=10_000),
         )),
    Kind("dynamodb", "aws", "Amazon DynamoDB", "Databases", "NoSQL Databases", "Table",
         "arn:aws:dynamodb:{region}:{acct}:table/{name}", _one(
             Meter("WriteRequestUnits", "$1.25 per million write request units", "WriteRequestUnits",
                   "1M WriteRequestUnits", 1.25, 30_000_000.0, Profile.TRAFFIC, block=1_000_000),
             Meter("ReadRequestUnits", "$0.25 per million read request units", "ReadRequestUnits",
                   "1M ReadRequestUnits", 0.25, 150_000_000.0, Profile.TRAFFIC, block=1_000_000),
             Meter("TimedStorage-ByteHrs", "$0.25 per GB-Month of storage used beyond first 25 "
                   "free GB-Months", "GB-Months", "GB-Months", 0.25, 300.0, Profile.STORAGE,
                   per_month=True),
         )),
    Kind("sagemaker", "aws", "Amazon SageMaker", "AI and Machine Learning", "Machine Learning",
         "Endpoint", "arn:aws:sagemaker:{region}:{acct}:endpoint/{name}", {
             "ml.g5.2xlarge": (Meter("Hosting:ml.g5.2xlarge", "$1.515 per Hosting ml.g5.2xlarge "
                                     "hour in US East (N. Virginia)", "Hours", "Hours", 1.515,
                                     24.0, H),),
             "ml.g5.12xlarge": (Meter("Train:ml.g5.12xlarge", "$7.09 per Training ml.g5.12xlarge "
                                      "hour in US East (N. Virginia)", "Hours", "Hours", 7.09,
                                      9.0, Profile.BATCH),),
         }),
    Kind("eks", "aws", "Amazon Elastic Kubernetes Service", "Compute", "Containers", "Cluster",
         "arn:aws:eks:{region}:{acct}:cluster/{name}", _one(
             Meter("EKS Cluster Hours", "Amazon EKS cluster usage - $0.10 per hour", "Hours",
                   "Hours", 0.10, 24.0, H),
         )),
    Kind("nat", "aws", "Amazon Virtual Private Cloud", "Networking", "Network Connectivity",
         "NAT Gateway", "nat-{hex17}", _one(
             Meter("NatGateway-Hours", "$0.045 per NAT Gateway Hour", "Hours", "Hours", 0.045,
                   24.0, H),
             Meter("NatGateway-Bytes", "$0.045 per GB Data Processed by NAT Gateways", "GB", "GB",
                   0.045, 300.0, Profile.TRAFFIC),
         )),
    Kind("tgw", "aws", "Amazon Virtual Private Cloud", "Networking", "Network Connectivity",
         "Transit Gateway Attachment", "tgw-attach-{hex17}", _one(
             Meter("TransitGateway-Hours", "$0.05 per Transit Gateway attachment hour", "Hours",
                   "Hours", 0.05, 24.0, H),
             Meter("TransitGateway-Bytes", "$0.02 per GB Data Processed by Transit Gateway", "GB",
                   "GB", 0.02, 400.0, Profile.TRAFFIC),
         )),
    Kind("transfer", "aws", "AWS Data Transfer", "Networking", "Network Connectivity", None, None,
         _one(
             Meter("DataTransfer-Regional-Bytes", "$0.010 per GB - regional data transfer - "
                   "in/out/between EC2 AZs or using elastic IPs or ELB", "GB", "GB", 0.01,
                   1_200.0, Profile.TRAFFIC),
             Meter("DataTransfer-Out-Bytes", "$0.09 per GB - first 10 TB / month data transfer "
                   "out beyond the global free tier", "GB", "GB", 0.09, 150.0, Profile.TRAFFIC),
             Meter("DataTransfer-InterRegion", "$0.02 per GB - US East (Northern Virginia) data "
                   "transfer to Europe (Ireland)", "GB", "GB", 0.02, 250.0, Profile.BATCH),
         )),
    Kind("cloudwatch", "aws", "Amazon CloudWatch", "Management and Governance", "Observability",
         "Log Group", "arn:aws:logs:{region}:{acct}:log-group:/{name}", _one(
             Meter("DataProcessing-Bytes", "$0.50 per GB custom log data ingested", "GB", "GB",
                   0.50, 45.0, Profile.TRAFFIC),
             Meter("TimedStorage-ByteHrs", "$0.03 per GB-mo of log storage", "GB-Months",
                   "GB-Months", 0.03, 8_000.0, Profile.STORAGE, per_month=True),
             Meter("CW:MetricMonitorUsage", "$0.30 per metric-month - first 10,000 metrics",
                   "Metrics", "Metric-Months", 0.30, 1_000.0, Profile.STORAGE, per_month=True),
         )),
    Kind("guardduty", "aws", "Amazon GuardDuty", "Security", "Threat Detection and Response",
         "Detector", "arn:aws:guardduty:{region}:{acct}:detector/{hex32}", _one(
             Meter("PaidEventsAnalyzed", "$1.00 per GB VPC Flow Log and DNS log analysis", "GB",
                   "GB", 1.0, 12.0, Profile.TRAFFIC),
         )),
    Kind("route53", "aws", "Amazon Route 53", "Networking", "Network Connectivity",
         "Hosted Zone", "arn:aws:route53:::hostedzone/Z{upper13}", _one(
             Meter("DNS-Queries", "$0.40 per 1,000,000 queries for the first 1 Billion queries",
                   "Queries", "1M Queries", 0.40, 15_000_000.0, Profile.TRAFFIC,
                   block=1_000_000),
         )),
)

# ---- Google Cloud ------------------------------------------------------------------
GCE_TYPES: Final = {
    # type: (vCPU, GiB, family, GPUs)
    "e2-standard-4": (4, 16, "E2", 0),
    "e2-standard-8": (8, 32, "E2", 0),
    "n2-standard-8": (8, 32, "N2", 0),
    "n2-standard-16": (16, 64, "N2", 0),
    "n2-highmem-16": (16, 128, "N2", 0),
    "a2-highgpu-1g": (12, 85, "A2", 1),
}
_GCE_CORE = {"E2": 0.021811, "N2": 0.031611, "A2": 0.031611}
_GCE_RAM = {"E2": 0.002923, "N2": 0.004237, "A2": 0.004237}
_A100 = 2.933908
# Sustained use discount on N2 that runs the whole month (GCP gives up to 20%).
SUD_RATE: Final = 0.20


def _gce_meters(mtype: str) -> tuple[Meter, ...]:
    vcpu, gib, family, gpus = GCE_TYPES[mtype]
    meters = [
        Meter(f"{family} Instance Core", f"{family} Instance Core running in Americas",
              "vCPU-Hours", "vCPU-Hours", _GCE_CORE[family], vcpu * 24.0, H),
        Meter(f"{family} Instance Ram", f"{family} Instance Ram running in Americas",
              "GiB-Hours", "GiB-Hours", _GCE_RAM[family], gib * 24.0, H),
    ]
    if gpus:
        meters.append(Meter("Nvidia Tesla A100 GPU", "Nvidia Tesla A100 GPU running in Americas",
                            "GPU-Hours", "GPU-Hours", _A100, gpus * 24.0, H))
    if family == "N2":
        hourly = vcpu * _GCE_CORE[family] + gib * _GCE_RAM[family]
        meters.append(Meter("Sustained Usage Discount",
                            f"Sustained Usage Discount: {family} Instance Core and Ram in Americas",
                            "Hours", "Hours", -round(SUD_RATE * hourly, 6), 24.0, H, credit=True))
    return tuple(meters)


GCP_KINDS: Final = (
    Kind("gce", "gcp", "Compute Engine", "Compute", "Virtual Machines", "Instance",
         "//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{name}",
         {t: _gce_meters(t) for t in GCE_TYPES}, "gce_instance",
         {t: {"MachineType": t, "vCPU": str(v), "MemoryGiB": str(g)}
          for t, (v, g, _, _) in GCE_TYPES.items()}),
    Kind("pd", "gcp", "Compute Engine", "Storage", "Block Storage", "Disk",
         "//compute.googleapis.com/projects/{project}/zones/{zone}/disks/{name}", {
             "pd-balanced": (Meter("Balanced PD Capacity", "Balanced PD Capacity in Americas",
                                   "GiB-Months", "GiB-Months", 0.10, 500.0, Profile.STORAGE,
                                   per_month=True),),
             "pd-ssd": (Meter("SSD backed PD Capacity", "SSD backed PD Capacity in Americas",
                              "GiB-Months", "GiB-Months", 0.17, 500.0, Profile.STORAGE,
                              per_month=True),),
         }, "pd_disk"),
    Kind("gcs", "gcp", "Cloud Storage", "Storage", "Object Storage", "Bucket",
         "//storage.googleapis.com/projects/_/buckets/{name}", _one(
             Meter("Standard Storage", "Standard Storage US Multi-region", "GiB-Months",
                   "GiB-Months", 0.026, 30_000.0, Profile.STORAGE, per_month=True),
             Meter("Class A Operations", "Multi-Region Standard Class A Operations", "Requests",
                   "10000 Requests", 0.05, 2_500_000.0, Profile.BATCH, block=10_000),
             Meter("Class B Operations", "Multi-Region Standard Class B Operations", "Requests",
                   "10000 Requests", 0.004, 25_000_000.0, Profile.INTERACTIVE, block=10_000),
         )),
    Kind("bigquery", "gcp", "BigQuery", "Databases", "Data Warehouses", "Dataset",
         "//bigquery.googleapis.com/projects/{project}/datasets/{name}", _one(
             Meter("Analysis", "Analysis", "TiB", "TiB", 6.25, 3.0, Profile.INTERACTIVE),
             Meter("Active Logical Storage", "Active Logical Storage", "GiB-Months",
                   "GiB-Months", 0.02, 45_000.0, Profile.STORAGE, per_month=True),
             Meter("Long Term Logical Storage", "Long Term Logical Storage", "GiB-Months",
                   "GiB-Months", 0.01, 70_000.0, Profile.STORAGE, per_month=True),
         )),
    Kind("vertex", "gcp", "Vertex AI", "AI and Machine Learning", "Machine Learning", "Endpoint",
         "//aiplatform.googleapis.com/projects/{project}/locations/{region}/endpoints/{digits}", {
             "prediction": (Meter("Online Prediction n1-standard-8",
                                  "Vertex AI: Online/Batch Prediction N1 Predefined Instance "
                                  "(n1-standard-8) in Americas", "Hours", "Hours", 0.4371, 24.0,
                                  H),),
             "training": (Meter("Custom Training A100", "Vertex AI: Training on A100 GPU "
                                "running in Americas", "GPU-Hours", "GPU-Hours", 3.52, 14.0,
                                Profile.BATCH),),
         }),
    Kind("cloudsql", "gcp", "Cloud SQL", "Databases", "Relational Databases", "Instance",
         "//cloudsql.googleapis.com/projects/{project}/instances/{name}", {
             "db-custom-8-32768": (
                 Meter("Zonal vCPU", "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas",
                       "vCPU-Hours", "vCPU-Hours", 0.0413, 192.0, H),
                 Meter("Zonal RAM", "Cloud SQL for PostgreSQL: Zonal - RAM in Americas",
                       "GiB-Hours", "GiB-Hours", 0.007, 768.0, H),
                 Meter("Zonal SSD Storage", "Cloud SQL for PostgreSQL: Zonal - Standard storage "
                       "in Americas", "GiB-Months", "GiB-Months", 0.17, 500.0, Profile.STORAGE,
                       per_month=True),
             ),
         }),
    Kind("gke", "gcp", "Kubernetes Engine", "Compute", "Containers", "Cluster",
         "//container.googleapis.com/projects/{project}/locations/{region}/clusters/{name}", _one(
             Meter("Regional Kubernetes Clusters", "Regional Kubernetes Clusters", "Hours", "Hours",
                   0.10, 24.0, H),
         )),
    Kind("dataflow", "gcp", "Dataflow", "Analytics", "Data Processing", "Job",
         "//dataflow.googleapis.com/projects/{project}/locations/{region}/jobs/{name}", _one(
             Meter("Batch vCPU Time", "Dataflow Batch vCPU Time in Iowa", "vCPU-Hours",
                   "vCPU-Hours", 0.056, 700.0, Profile.BATCH),
             Meter("Batch RAM Time", "Dataflow Batch RAM Time in Iowa", "GiB-Hours", "GiB-Hours",
                   0.003557, 2_800.0, Profile.BATCH),
         )),
    Kind("gcp-network", "gcp", "Networking", "Networking", "Network Connectivity", None, None,
         _one(
             Meter("Internet Egress", "Network Internet Data Transfer Out from Americas to "
                   "Americas", "GiB", "GiB", 0.12, 200.0, Profile.TRAFFIC),
             Meter("Inter Zone Egress", "Network Inter Zone Data Transfer Out", "GiB", "GiB",
                   0.01, 2_000.0, Profile.TRAFFIC),
             Meter("Cloud NAT Data Processing", "Cloud NAT: Data processing", "GiB", "GiB",
                   0.045, 300.0, Profile.TRAFFIC),
         )),
    Kind("logging", "gcp", "Cloud Logging", "Management and Governance", "Observability", None,
         None, _one(
             Meter("Log Volume", "Log Volume", "GiB", "GiB", 0.50, 50.0, Profile.TRAFFIC),
         )),
    Kind("monitoring", "gcp", "Cloud Monitoring", "Management and Governance", "Observability",
         None, None, _one(
             Meter("Metric Volume", "Monitoring: Metric Volume", "MiB", "MiB", 0.258, 60.0,
                   Profile.BATCH),
         )),
)

# ---- Azure -------------------------------------------------------------------------
VM_TYPES: Final = {
    "Standard_B4ms": (4, 16, 0.166, "BS Series"),
    "Standard_D8s_v5": (8, 32, 0.384, "Dsv5 Series"),
    "Standard_D16s_v5": (16, 64, 0.768, "Dsv5 Series"),
    "Standard_E16s_v5": (16, 128, 1.008, "Esv5 Series"),
    "Standard_NC6s_v3": (6, 112, 3.06, "NCSv3 Series"),
}


def _vm_meters(size: str) -> tuple[Meter, ...]:
    _, _, price, series = VM_TYPES[size]
    short = size.removeprefix("Standard_").replace("_", " ")
    return (Meter(short, f"Virtual Machines {series} - {short}", "Hours", "Hours", price, 24.0,
                  H),)


AZURE_KINDS: Final = (
    Kind("vm", "azure", "Virtual Machines", "Compute", "Virtual Machines", "Virtual machine",
         "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/"
         "{name}", {s: _vm_meters(s) for s in VM_TYPES}, "azure_vm",
         {s: {"VMSize": s, "vCPU": str(v), "MemoryGiB": str(g), "OperatingSystem": "Linux"}
          for s, (v, g, _, _) in VM_TYPES.items()}),
    Kind("disk", "azure", "Virtual Machines", "Compute", "Virtual Machines", "Disk",
         "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/disks/{name}", {
             "P20": (Meter("P20 LRS Disk", "Premium SSD Managed Disks - P20 LRS", "Disk-Months",
                           "Disk-Months", 73.22, 1.0, Profile.STORAGE, per_month=True,
                           sized=False),),
             "P30": (Meter("P30 LRS Disk", "Premium SSD Managed Disks - P30 LRS", "Disk-Months",
                           "Disk-Months", 135.17, 1.0, Profile.STORAGE, per_month=True,
                           sized=False),),
         }, "managed_disk", {"P20": {"SizeGiB": "512"}, "P30": {"SizeGiB": "1024"}}),
    Kind("storage", "azure", "Storage Accounts", "Storage", "Storage Platforms", "Storage account",
         "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.storage/storageaccounts/"
         "{name}", _one(
             Meter("Hot LRS Data Stored", "Blob Storage - Hot LRS Data Stored", "GB-Months",
                   "GB-Months", 0.0184, 20_000.0, Profile.STORAGE, per_month=True),
             Meter("Hot LRS Write Operations", "Blob Storage - Hot LRS Write Operations",
                   "Operations", "10K Operations", 0.055, 1_800_000.0, Profile.BATCH,
                   block=10_000),
             Meter("Hot Read Operations", "Blob Storage - Hot Read Operations", "Operations",
                   "10K Operations", 0.0044, 20_000_000.0, Profile.INTERACTIVE, block=10_000),
         )),
    Kind("sqldb", "azure", "Azure SQL Database", "Databases", "Relational Databases",
         "SQL database", "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.sql/servers/"
         "sql-{name}/databases/{name}", {
             "GP_Gen5_8": (
                 Meter("vCore", "SQL Database Single/Elastic Pool General Purpose - Compute Gen5 "
                       "- vCore", "vCore-Hours", "vCore-Hours", 0.2522, 192.0, H),
                 Meter("General Purpose Data Stored", "SQL Database Single/Elastic Pool General "
                       "Purpose - Storage - Data Stored", "GB-Months", "GB-Months", 0.115, 512.0,
                       Profile.STORAGE, per_month=True),
             ),
             "GP_Gen5_16": (
                 Meter("vCore", "SQL Database Single/Elastic Pool General Purpose - Compute Gen5 "
                       "- vCore", "vCore-Hours", "vCore-Hours", 0.2522, 384.0, H),
                 Meter("General Purpose Data Stored", "SQL Database Single/Elastic Pool General "
                       "Purpose - Storage - Data Stored", "GB-Months", "GB-Months", 0.115, 1024.0,
                       Profile.STORAGE, per_month=True),
             ),
         }),
    Kind("aks", "azure", "Azure Kubernetes Service", "Compute", "Containers", "Kubernetes service",
         "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.containerservice/"
         "managedclusters/{name}", _one(
             Meter("Standard Uptime SLA", "Azure Kubernetes Service - Standard - Uptime SLA",
                   "Hours", "Hours", 0.10, 24.0, H),
         )),
    Kind("monitor", "azure", "Azure Monitor", "Management and Governance", "Observability",
         "Log Analytics workspace", "/subscriptions/{sub}/resourcegroups/{rg}/providers/"
         "microsoft.operationalinsights/workspaces/{name}", _one(
             Meter("Analytics Logs Data Ingestion", "Log Analytics - Analytics Logs Data Ingestion",
                   "GB", "GB", 2.30, 8.0, Profile.TRAFFIC),
         )),
    Kind("bandwidth", "azure", "Bandwidth", "Networking", "Network Connectivity", None, None, _one(
        Meter("Standard Data Transfer Out", "Bandwidth - Rtn Preference: MGN - Standard Data "
              "Transfer Out", "GB", "GB", 0.087, 250.0, Profile.TRAFFIC),
        Meter("Inter-Region Data Transfer Out", "Bandwidth - Inter-Region - Intra-Continent Data "
              "Transfer Out", "GB", "GB", 0.02, 400.0, Profile.BATCH),
    )),
    Kind("firewall", "azure", "Azure Firewall", "Networking", "Network Security", "Firewall",
         "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.network/azurefirewalls/"
         "{name}", _one(
             Meter("Standard Deployment", "Azure Firewall - Standard Deployment", "Hours", "Hours",
                   1.25, 24.0, H),
             Meter("Standard Data Processed", "Azure Firewall - Standard Data Processed", "GB",
                   "GB", 0.016, 1_000.0, Profile.TRAFFIC),
         )),
    Kind("adf", "azure", "Azure Data Factory", "Integration", "Workflow Orchestration",
         "Data factory", "/subscriptions/{sub}/resourcegroups/{rg}/providers/"
         "microsoft.datafactory/factories/{name}", _one(
             Meter("Cloud Data Movement", "Azure Data Factory v2 - Cloud Data Movement",
                   "DIU-Hours", "DIU-Hours", 0.25, 180.0, Profile.BATCH),
             Meter("Cloud Orchestration Activity Run", "Azure Data Factory v2 - Cloud "
                   "Orchestration Activity Run", "Activity Runs", "1K Activity Runs", 1.0,
                   4_000.0, Profile.BATCH, block=1000),
         )),
)

KINDS: Final = {k.key: k for k in (*AWS_KINDS, *GCP_KINDS, *AZURE_KINDS)}
