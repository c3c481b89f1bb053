"""Compatibility surfaces: one module (or package) per wire protocol, each a thin translator onto the service.

Each surface exposes ``install(app: FastAPI, settings: Settings) -> None`` that adds its routes; the app
factory calls every installer listed in ``INSTALLERS`` (``"module:function"``), importing it lazily.
"""

INSTALLERS: list[str] = [
    "meterd.surfaces.vault:install",
    "meterd.surfaces.ui:install",
    "meterd.surfaces.aws:install",
]
