"""Typed dependencies: routes receive the running gallery and the settings this way."""

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.gallery.errors import ModelNotReady
from app.gallery.service import Gallery


def get_gallery(request: Request) -> Gallery:
    gallery: Gallery | None = getattr(request.app.state, "gallery", None)
    if gallery is None:
        raise ModelNotReady("the model and index are still loading; try again shortly")
    return gallery


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


GalleryDep = Annotated[Gallery, Depends(get_gallery)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
