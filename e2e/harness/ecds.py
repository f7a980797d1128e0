"""Envoy whose wasm network filter comes from extension config discovery
(ECDS) read from a file, the shape Istio gives a sidecar (istiod sends the
same resource over ADS). Publishing writes a discovery response and moves it
into place, which is how Envoy's file watch expects updates:

    envoy = EcdsEnvoy(scope.dir, redis, ecds_path=scope.dir / "ecds.yaml",
                      host_env={"REDIS_PASSWORD": "..."})
    scope.envoys.append(envoy)
    envoy.publish(1, {"downstream": {...}}, wasm_path)
    envoy.start()
    envoy.wait_updates(success=1)

Envoy counts every file it reads in `extension_config_discovery.*`:
`update_success` (applied), `update_rejected` (refused: the module did not
load or `on_configure` returned false), `update_attempt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from . import yamlout
from .envoy import Envoy, wasm_filter
from .procs import HarnessError, wait_until

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
FILTER_NAME = "extensions.istio.io/wasmplugin/redis.redis-auth"


class EcdsEnvoy(Envoy):
    def __init__(self, *args, ecds_path: Path, filter_name: str = FILTER_NAME, **kw):
        super().__init__(*args, **kw)
        self.ecds_path = Path(ecds_path)
        self.filter_name = filter_name

    def render(self) -> dict:
        bootstrap = super().render()
        # Dynamic configuration needs a node identity; this is the shape of
        # an Istio sidecar's.
        bootstrap["node"] = {
            "id": "sidecar~127.0.0.1~redis-client-0.redis~redis.svc.cluster.local",
            "cluster": "redis-client.redis",
        }
        listener = bootstrap["static_resources"]["listeners"][0]
        listener["filter_chains"][0]["filters"].insert(
            0,
            {
                "name": self.filter_name,
                "config_discovery": {
                    "config_source": {
                        "path_config_source": {"path": str(self.ecds_path)},
                        "resource_api_version": "V3",
                    },
                    "type_urls": [WASM_TYPE],
                },
            },
        )
        return bootstrap

    def publish(
        self,
        version: int,
        config: str | Mapping | None,
        wasm_path: Path | str,
        *,
        failure_policy: str = "FAIL_CLOSED",
        host_env_keys: Sequence[str] = ("REDIS_PASSWORD",),
    ) -> None:
        """Publishes our filter with this plugin configuration and module."""
        entry = wasm_filter(wasm_path, config, host_env_keys=host_env_keys, failure_policy=failure_policy)
        response = {
            "version_info": str(version),
            "resources": [
                {
                    "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                    "name": self.filter_name,
                    "typed_config": entry["typed_config"],
                }
            ],
        }
        staging = self.ecds_path.with_suffix(".tmp")
        staging.write_text(yamlout.dump(response))
        os.replace(staging, self.ecds_path)

    def ecds_stats(self) -> dict[str, int]:
        """`extension_config_discovery.*` counters, by their last name part
        (update_success, update_rejected, update_attempt, config_reload...)."""
        stats = self.stats(filter=r"^extension_config_discovery\.")
        return {name.rsplit(".", 1)[-1]: value for name, value in stats.items()}

    def wait_updates(self, timeout: float = 10.0, **at_least: int) -> dict[str, int]:
        """Waits until each named counter has reached its value, e.g.
        `wait_updates(success=2, rejected=1)`; returns the counters."""
        box: dict[str, int] = {}

        def reached() -> bool:
            box.clear()
            box.update(self.ecds_stats())
            return all(box.get(f"update_{k}", 0) >= v for k, v in at_least.items())

        try:
            wait_until(reached, timeout, f"ECDS updates {at_least}", procs=[self.proc] if self.proc else [])
        except HarnessError as e:
            raise HarnessError(f"{e}\nlast counters: {box}") from None
        return dict(box)


__all__ = ["EcdsEnvoy", "FILTER_NAME", "WASM_TYPE"]
