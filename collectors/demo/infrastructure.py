"""What the demo company runs: deployments of catalogue kinds into its sub-accounts.

Each tenant gets its team's blueprint, sized by the tenant's weight; shared platform
pieces (networking, Kubernetes control planes, observability) carry no tenant tag; the
sandbox and dev subscriptions carry almost no tags at all. Stories the data tells:

- hooli moves its feature services from AWS to Google Cloud a bit past mid-window, which
  leaves the AWS Compute Savings Plan partly unused from then on;
- wonka is onboarded in the second month;
- initech's analytics servers, umbrella's Azure VMs and Cloud SQL, wonka's database and
  everything in the sandboxes are over-provisioned or idle;
- the runaway GPU instance, see ``anomalies.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.demo.catalog import Profile
from collectors.demo.org import TENANTS

# Utilisation profiles for compute resources (see utilization.py).
BUSY, NORMAL, OVER, IDLE, MIXED = "busy", "normal", "over", "idle", "mixed"


@dataclass(frozen=True)
class Deployment:
    kind: str
    account: str  # SubAccount key
    region: str
    role: str  # names the resources: <owner>-<role>-NN
    count: float  # resources at the reference scale, before the tenant's weight
    variants: tuple[str, ...] = ("default",)
    tenant: str | None = None
    team: str | None = None  # defaults to the tenant's team
    size: float = 1.0  # median multiplier on usage quantities
    spread: float = 0.35  # sd of the log of each resource's size
    growth: float = 0.03  # per month, on usage quantities (not on fixed hours)
    profile: Profile | None = None  # replaces ALWAYS_ON (e.g. FLEET for autoscaled nodes)
    late: float = 0.0  # share of resources created inside the window
    retire: float = 0.0  # share of resources deleted inside the window
    starts_at: float | None = None  # fraction of the window where all resources appear
    retire_at: float | None = None  # fraction of the window where all resources go
    active: tuple[int, int] | None = None  # days before the end: (first day, last day)
    util: str = MIXED
    commitment: str | None = None
    tag_tenant: bool = True  # False: shared, or nobody tagged it
    tag_team: bool = True
    env: str | None = None  # defaults to the sub-account's env
    extra_tags: tuple[tuple[str, str], ...] = ()
    attached: bool = True  # volumes: False means unattached (waste)
    anomaly: str | None = None  # the deployment *is* an anomaly (runaway resource)


def _tenant_blueprint(tenant: str, team: str) -> list[Deployment]:
    t = tenant
    out: list[Deployment] = []
    if team == "data-platform":
        a = "data-platform-prod"
        out += [
            Deployment("ec2", a, "us-east-1", "ingest", 8, ("r6i.4xlarge",), t, util=BUSY,
                       commitment="aws-sp"),
            Deployment("ec2", a, "us-east-1", "eks-node", 16, ("m6i.8xlarge", "c6i.8xlarge"), t,
                       profile=Profile.FLEET, late=0.3, util=NORMAL,
                       extra_tags=(("aws:eks:cluster-name", "eks-prod-us"),)),
            Deployment("ebs", a, "us-east-1", "data", 24, ("gp3",), t, size=1.5),
            Deployment("s3", a, "us-east-1", "lake", 4, tenant=t, size=1.6, growth=0.05, spread=0.6),
            Deployment("glue", a, "us-east-1", "nightly-etl", 3, tenant=t, size=1.3),
            Deployment("athena", a, "us-east-1", "adhoc", 1, tenant=t, size=2.0),
            Deployment("rds", a, "us-east-1", "metadata-pg", 2, ("db.r6g.xlarge",), t,
                       util=NORMAL, commitment="aws-rds-ri"),
            Deployment("ec2", "staging", "us-east-1", "stg", 2, ("m6i.xlarge", "t3.large"), t,
                       tag_tenant=False, util=IDLE),
        ]
        if tenant == "globex":
            out += [
                Deployment("bigquery", "analytics-warehouse", "us-central1", "events", 2,
                           tenant=t, size=4.0, growth=0.04),
                Deployment("ebs", a, "us-east-1", "restore", 2, ("gp2",), t, size=3.0,
                           attached=False),
            ]
    elif team == "ml":
        if tenant == "hooli":
            a = "ml-prod"
            out += [
                Deployment("ec2", a, "us-east-1", "feature-svc", 6, ("m6i.4xlarge",), t,
                           util=NORMAL, commitment="aws-sp", retire_at=0.56),
                Deployment("ec2", a, "us-east-1", "inference", 3, ("g5.2xlarge",), t, util=BUSY,
                           commitment="aws-sp"),
                Deployment("sagemaker", a, "us-east-1", "ranker", 3, ("ml.g5.2xlarge",), t),
                Deployment("sagemaker", a, "us-east-1", "train", 2, ("ml.g5.12xlarge",), t),
                Deployment("s3", a, "us-east-1", "training-data", 3, tenant=t, size=1.5),
                Deployment("ebs", a, "us-east-1", "data", 10, ("gp3",), t),
                Deployment("ec2", a, "us-east-1", "gpu-experiment", 1, ("p3.8xlarge",), t,
                           active=(19, 13), util=IDLE, anomaly="runaway-gpu-hooli"),
                Deployment("gce", "ml-training", "us-central1", "feature-svc", 6,
                           ("n2-standard-16",), t, util=NORMAL, starts_at=0.55),
            ]
        out += [
            Deployment("gce", "ml-training", "us-central1", "trainer", 2, ("a2-highgpu-1g",), t,
                       util=BUSY, commitment="gcp-cud"),
            Deployment("gce", "ml-training", "us-central1", "featurestore", 3,
                       ("n2-highmem-16",), t, util=NORMAL, commitment="gcp-cud"),
            Deployment("gce", "ml-training", "us-central1", "gke-node", 8, ("n2-standard-8",), t,
                       profile=Profile.FLEET, late=0.25, util=NORMAL,
                       extra_tags=(("goog-k8s-cluster-name", "gke-ml-us"),)),
            Deployment("pd", "ml-training", "us-central1", "data", 10, ("pd-balanced", "pd-ssd"),
                       t),
            Deployment("gcs", "ml-training", "us-central1", "datasets", 3, tenant=t, size=1.6),
            Deployment("vertex", "ml-training", "us-central1", "serving", 2, ("prediction",), t),
            Deployment("vertex", "ml-training", "us-central1", "tuning", 2, ("training",), t),
            Deployment("bigquery", "ml-training", "us-central1", "features", 1, tenant=t,
                       size=0.5),
        ]
        if tenant == "stark":
            out.append(Deployment("vm", "prod-eastus", "eastus", "gpu", 1, ("Standard_NC6s_v3",),
                                  t, util=NORMAL))
    elif team == "analytics":
        if tenant == "initech":
            a = "analytics-prod"
            out += [
                Deployment("ec2", a, "us-east-1", "reporting", 4, ("r6i.4xlarge",), t, util=OVER),
                Deployment("ec2", a, "us-east-1", "etl", 6, ("m6i.4xlarge",), t, util=NORMAL),
                Deployment("ebs", a, "us-east-1", "reporting", 10, ("gp3",), t),
                Deployment("athena", a, "us-east-1", "reports", 2, tenant=t, size=2.5),
                Deployment("glue", a, "us-east-1", "ingest", 3, tenant=t),
                Deployment("s3", a, "us-east-1", "warehouse", 3, tenant=t, size=1.5, growth=0.05),
                Deployment("rds", a, "us-east-1", "reporting-pg", 1, ("db.r6g.2xlarge",), t,
                           util=OVER),
                Deployment("ebs", a, "us-east-1", "old-snapshot", 1, ("gp2",), t, size=2.0,
                           attached=False),
                Deployment("vm", "prod-westeurope", "westeurope", "app", 7, ("Standard_D16s_v5",),
                           t, util=NORMAL),
                Deployment("disk", "prod-westeurope", "westeurope", "app", 5, ("P30",), t,
                           growth=0.0),
                Deployment("sqldb", "prod-westeurope", "westeurope", "reports", 2, ("GP_Gen5_16",),
                           t),
                Deployment("storage", "prod-westeurope", "westeurope", "lake", 3, tenant=t),
                Deployment("adf", "prod-westeurope", "westeurope", "pipelines", 1, tenant=t),
            ]
        else:
            out += [
                Deployment("bigquery", "analytics-warehouse", "us-central1", "warehouse", 3,
                           tenant=t, size=2.0),
                Deployment("dataflow", "analytics-warehouse", "us-central1", "ingest", 3,
                           tenant=t, size=1.5),
                Deployment("cloudsql", "analytics-warehouse", "us-central1", "app-pg", 1,
                           ("db-custom-8-32768",), t, util=OVER),
                Deployment("gcs", "analytics-warehouse", "us-central1", "landing", 2, tenant=t),
                Deployment("gce", "analytics-warehouse", "us-central1", "worker", 6,
                           ("e2-standard-8",), t, util=MIXED),
                Deployment("pd", "analytics-warehouse", "us-central1", "worker", 6,
                           ("pd-balanced",), t),
                Deployment("vm", "prod-eastus", "eastus", "etl", 3, ("Standard_E16s_v5",), t,
                           util=OVER),
                Deployment("vm", "prod-westeurope", "westeurope", "app", 3, ("Standard_D8s_v5",),
                           t, util=NORMAL),
                Deployment("sqldb", "prod-westeurope", "westeurope", "app", 1, ("GP_Gen5_8",), t),
                Deployment("storage", "prod-westeurope", "westeurope", "files", 1, tenant=t),
                Deployment("adf", "prod-westeurope", "westeurope", "sync", 1, tenant=t, size=0.6),
            ]
    elif team == "web":
        a = "web-prod"
        start = 0.22 if tenant == "wonka" else None
        out += [
            Deployment("ec2", a, "us-east-1", "web", 12, ("c6i.2xlarge",), t, profile=Profile.FLEET,
                       late=0.2, util=NORMAL, starts_at=start),
            Deployment("ec2", a, "us-east-1", "api", 4, ("m6i.2xlarge",), t, util=NORMAL,
                       commitment="aws-sp" if start is None else None, starts_at=start),
            Deployment("alb", a, "us-east-1", "web", 2, tenant=t, starts_at=start),
            Deployment("cloudfront", a, "us-east-1", "cdn", 1, tenant=t, starts_at=start),
            Deployment("lambda", a, "us-east-1", "events", 4, tenant=t, starts_at=start),
            Deployment("dynamodb", a, "us-east-1", "sessions", 3, tenant=t, starts_at=start),
            Deployment("ebs", a, "us-east-1", "api", 4, ("gp3",), t, starts_at=start),
            Deployment("s3", a, "us-east-1", "assets", 1, tenant=t, size=0.3, starts_at=start),
            Deployment("rds", a, "us-east-1", "app-pg",
                       1, ("db.r6g.2xlarge",) if tenant == "wonka" else ("db.m6g.large",), t,
                       util=IDLE if tenant == "wonka" else NORMAL, starts_at=start),
        ]
        if tenant == "wayne":
            out += [
                Deployment("vm", "prod-eastus", "eastus", "web", 10, ("Standard_D8s_v5",), t,
                           util=NORMAL),
                Deployment("vm", "prod-eastus", "eastus", "jobs", 4, ("Standard_B4ms",), t,
                           util=MIXED),
                Deployment("disk", "prod-eastus", "eastus", "web", 10, ("P30",), t, growth=0.0),
                Deployment("sqldb", "prod-eastus", "eastus", "app", 2, ("GP_Gen5_8",), t),
                Deployment("storage", "prod-eastus", "eastus", "media", 3, tenant=t),
            ]
    return out


def _shared() -> list[Deployment]:
    def shared(kind: str, account: str, region: str, role: str, count: float, **kw: object
               ) -> Deployment:
        kw.setdefault("tag_tenant", False)
        kw.setdefault("tag_team", False)
        kw.setdefault("growth", 0.02)
        # One of a kind: its size is a decision, not a draw.
        kw.setdefault("spread", 0.1)
        return Deployment(kind, account, region, role, count, **kw)  # type: ignore[arg-type]

    net = (("service", "networking"),)
    obs = (("service", "observability"),)
    k8s = (("service", "kubernetes"),)
    return [
        shared("nat", "network-hub", "us-east-1", "nat", 3, extra_tags=net),
        shared("nat", "network-hub", "eu-west-1", "nat", 2, extra_tags=net, size=0.5),
        shared("tgw", "network-hub", "us-east-1", "tgw", 5, extra_tags=net),
        shared("transfer", "data-platform-prod", "us-east-1", "transfer", 1, size=1.4),
        shared("transfer", "ml-prod", "us-east-1", "transfer", 1, size=0.8),
        shared("transfer", "analytics-prod", "us-east-1", "transfer", 1, size=0.6),
        shared("transfer", "web-prod", "us-east-1", "transfer", 1, size=1.2),
        shared("transfer", "network-hub", "us-east-1", "transfer", 1, size=0.8),
        shared("eks", "shared-services", "us-east-1", "eks-prod-us", 1, extra_tags=k8s),
        shared("eks", "shared-services", "eu-west-1", "eks-prod-eu", 1, extra_tags=k8s),
        shared("eks", "staging", "us-east-1", "eks-staging", 1, extra_tags=k8s, env="staging"),
        shared("cloudwatch", "shared-services", "us-east-1", "platform-logs", 4, extra_tags=obs,
               size=0.6),
        shared("guardduty", "shared-services", "us-east-1", "guardduty", 2,
               extra_tags=(("service", "security"),)),
        shared("route53", "network-hub", "us-east-1", "dns", 1, extra_tags=net),
        # Sandbox: experiments nobody tagged and nobody switched off.
        shared("ec2", "sandbox", "us-east-1", "sandbox", 5, variants=("m6i.xlarge", "t3.large",
                                                                    "r6i.2xlarge"), util=IDLE),
        shared("ebs", "sandbox", "us-east-1", "orphan", 6, variants=("gp2",), attached=False,
               size=0.8),
        shared("s3", "sandbox", "us-east-1", "scratch", 2, size=0.2),
        # Google Cloud shared platform.
        shared("gke", "platform-shared", "us-central1", "gke-ml-us", 1, extra_tags=k8s),
        shared("gke", "platform-shared", "europe-west4", "gke-web-eu", 1, extra_tags=k8s),
        shared("gcp-network", "platform-shared", "us-central1", "network", 1, extra_tags=net),
        shared("logging", "platform-shared", "us-central1", "logging", 1, extra_tags=obs),
        shared("monitoring", "platform-shared", "us-central1", "monitoring", 1, extra_tags=obs),
        shared("gce", "sandbox-gcp", "us-central1", "notebook", 3, variants=("e2-standard-4",),
               util=IDLE),
        shared("gcs", "sandbox-gcp", "us-central1", "scratch", 1, size=0.2),
        # Azure shared platform, US and EU billing accounts.
        shared("firewall", "connectivity", "eastus", "fw-hub", 1, extra_tags=net),
        shared("bandwidth", "connectivity", "eastus", "egress", 1, extra_tags=net),
        shared("aks", "connectivity", "eastus", "aks-prod-us", 2, extra_tags=k8s),
        shared("monitor", "connectivity", "eastus", "law-platform", 2, extra_tags=obs),
        shared("bandwidth", "shared-westeurope", "westeurope", "egress", 1, extra_tags=net,
               size=0.6),
        shared("monitor", "shared-westeurope", "westeurope", "law-platform-eu", 1,
               extra_tags=obs),
        shared("aks", "shared-westeurope", "westeurope", "aks-prod-eu", 1, extra_tags=k8s),
        shared("vm", "dev-eastus", "eastus", "devbox", 3, variants=("Standard_D8s_v5",),
               util=IDLE),
        # Disks of dev boxes deleted long ago, still billed every month.
        shared("disk", "dev-eastus", "eastus", "devbox-osdisk", 3, variants=("P20",),
               growth=0.0, attached=False),
    ]


def deployments() -> list[Deployment]:
    out: list[Deployment] = []
    for tenant in TENANTS:
        out += _tenant_blueprint(tenant.name, tenant.team)
    return out + _shared()
