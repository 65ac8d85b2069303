"""/docs without the internet: Swagger UI's files come from an installed
package (flask-swagger-ui vendors the swagger-ui dist release it is named
after) and are served here, so the page and everything it loads are ours."""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Flask

ASSETS_PATH = "/docs/assets"
ASSETS_ENDPOINT = "swagger_ui_assets.static"  # files only: no database scope to declare
SWAGGER_UI_DIST = str(files("flask_swagger_ui") / "dist")

CONFIG = {
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_PATH + "/",
    # Swagger UI would otherwise show a badge fetched from validator.swagger.io.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}


def init_app(app: Flask) -> None:
    """Serve the dist files under /docs/assets/ (before flask-smorest builds /docs)."""
    app.config.update(CONFIG)
    app.register_blueprint(Blueprint("swagger_ui_assets", __name__, static_folder=SWAGGER_UI_DIST, static_url_path=ASSETS_PATH))
