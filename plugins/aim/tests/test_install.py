"""The installed distribution, checked by the core's install contract on the reference's
config block."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestAimInstall(InstallContract):
    distribution = "gatehouse-aim"
    entry_points = {"aim": "gatehouse_aim"}
    configs = {"guardrails.yaml": "unknown guardrail type 'aim'"}
    env = {"AIM_API_KEY": "aim-x", "AIM_API_BASE": "https://aim.invalid"}
    refused = {"guardrails:\n  - guardrail_name: aim\n    litellm_params: {guardrail: aim}\n":
               ("Couldn't get Aim api key, either set the `AIM_API_KEY` in the environment or "
                "pass it as a parameter to the guardrail in the config file",
                {"AIM_API_KEY": None})}
