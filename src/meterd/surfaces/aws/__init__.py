"""The AWS Marketplace Metering surface: boto3's ``meteringmarketplace`` client works against meterd.

``install`` adds an ASGI dispatch that takes ``POST /`` requests carrying ``X-Amz-Target`` (JSON 1.1, SigV4)
and a public JWKS route for the RegisterUsage signing keys; everything else passes through to the app.
"""

from __future__ import annotations

from fastapi import FastAPI

from meterd.server.routes.marketplace import marketplace_of
from meterd.server.settings import Settings
from meterd.surfaces.aws.protocol import AwsDispatch, AwsHandler
from meterd.surfaces.aws.public import router


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the AWS protocol on ``POST /`` (by X-Amz-Target) and the JWKS on ``/aws/.well-known/jwks.json``."""
    handler = AwsHandler(marketplace_of(app), settings)
    app.add_middleware(AwsDispatch, handler=handler)
    app.include_router(router)
