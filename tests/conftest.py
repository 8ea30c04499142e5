"""Test-wide set-up.

``ALIBABA_CLOUD_ECS_METADATA_DISABLED`` must be set before anything imports
``alibabacloud_credentials``: its default chain otherwise probes the cloud metadata address.
Nothing in the tests leaves 127.0.0.1.
"""

from __future__ import annotations

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
for _var in (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
):
    os.environ.pop(_var, None)
os.environ.setdefault("ALIBABA_CLOUD_CREDENTIALS_FILE", os.devnull)
os.environ.setdefault("ALIBABA_CLOUD_CONFIG_FILE", os.devnull)
