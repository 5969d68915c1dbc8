"""``finops collect aws``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finops.commands.collect_focus import report_ingest
from finops.context import HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format
from finops.progress import info


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @collect_app.command("aws")
    def collect_aws_cmd(
        path: Annotated[Path | None, typer.Option(
            "--path", help="A CUR / CUR 2.0 / AWS FOCUS file, or a folder of them.")] = None,
        bucket: Annotated[str | None, typer.Option("--bucket", help="S3 bucket of the CUR.")] = None,
        prefix: Annotated[str, typer.Option("--prefix", help="S3 prefix of one report.")] = "",
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id in the warehouse (default: aws).")] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
        role_arn: Annotated[str | None, typer.Option("--role-arn", help="Role to assume.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Collect unchanged periods too.")] = False,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import AWS CUR, CUR 2.0 or AWS's FOCUS export, from disk or S3."""
        from collectors.aws import collect_aws_path
        from collectors.aws_s3 import collect_aws_s3, s3_client

        if (path is None) == (bucket is None):
            raise BadInputError("give either --path or --bucket (with --prefix)",
                                hint="finops collect aws --path exports/ or --bucket B --prefix P")
        ctx = open_context(home)
        try:
            share = ctx.settings.ingest.max_rejected_cost_share
            if path is not None:
                result = collect_aws_path(ctx.warehouse, ctx.state, path, source=source,
                                          max_rejected_share=share)
            else:
                assert bucket is not None
                maybe = collect_aws_s3(
                    ctx.warehouse, ctx.state, bucket=bucket, prefix=prefix, source=source,
                    max_rejected_share=share, client=s3_client(profile=profile, role_arn=role_arn),
                    force=force,
                )
                if maybe is None:
                    info("every period is unchanged since the last collect; nothing to do")
                    return
                result = maybe
        finally:
            ctx.close()
        report_ingest(result, fmt)
