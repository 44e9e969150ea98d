"""HTTP interface of image search:

POST /imagesearch/search          multipart form: an uploaded `image` file or an `image_id`, and `k`
GET  /imagesearch/images/{id}.png a catalogue image (public ones only), for thumbnails
GET  /imagesearch/samples         a few public image ids to start from (the web page's picks)
GET  /imagesearch/                the web page: pick or upload an image, see the results as a grid
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from common.images.files import ImageRejected
from common.search.api import stages_out
from common.serving.app import get_service
from common.serving.schemas import ERROR_RESPONSES, MAX_ID, ModelOut, StageOut

MAX_K = 50
FIELDS = {"image", "image_id", "k"}


class ImageOut(BaseModel):
    image_id: int
    score: float = Field(description="Inner product of the two images' embeddings (cosine): 1 is identical")
    shape: str | None = None
    colour: str | None = None
    texture: str | None = None
    label: str | None = Field(None, description="The image's class, for a catalogue read from a folder")
    day: int = Field(description="The day the image was uploaded")


class QueryOut(BaseModel):
    image_id: int | None = Field(description="The catalogue image searched by, or null for an upload")
    upload_bytes: int | None = Field(description="The uploaded file's size, or null for a search by id")


class ImageSearchResponse(BaseModel):
    query: QueryOut
    images: list[ImageOut] = Field(description="At most k similar images, most similar first")
    models: dict[str, ModelOut]
    stages: dict[str, StageOut]


def _invalid(field: str, message: str, value=None) -> HTTPException:
    detail = [{"type": "value_error", "loc": ["body", field], "msg": message, "input": value}]
    return HTTPException(status_code=422, detail=detail)


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/search",
        response_model=ImageSearchResponse,
        summary="Images similar to an uploaded one, or to a catalogue image",
        responses=ERROR_RESPONSES,
    )
    async def search(
        request: Request,
        # Not "| None": a form cannot send a null, so the schema must not offer one; absent is None.
        image: Annotated[
            UploadFile, File(description="An image file (PNG, JPEG, GIF, BMP, WebP); or give image_id")
        ] = None,
        image_id: Annotated[
            int, Form(ge=0, le=MAX_ID, description="A catalogue image to search by; or upload `image`")
        ] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K, description=f"How many images to return, 1 to {MAX_K}")] = 10,
    ) -> ImageSearchResponse:
        """decode (upload) -> embedding (the champion CNN) -> nearest neighbours (IVF-PQ) -> re-ranking (private
        images, the query itself and near-copies of it dropped)."""
        from systems.imagesearch.serving import ImageSearchService, UnknownImage

        unknown = sorted(set((await request.form()).keys()) - FIELDS)
        if unknown:
            raise _invalid(unknown[0], f"unknown field {unknown[0]!r}; the form takes {sorted(FIELDS)}")
        if (image is None) == (image_id is None):
            raise _invalid("image", "send exactly one of: an uploaded `image` file, an `image_id`")
        service: ImageSearchService = get_service(request, "imagesearch")
        if image is not None:
            if image.size is not None and image.size > service.max_upload_bytes:
                raise _invalid("image", f"the file is {image.size} bytes; the limit is {service.max_upload_bytes}")
            data = await image.read()
            try:
                found, stage_ms = service.search_by_upload(data, k)
            except ImageRejected as error:
                raise _invalid("image", str(error)) from error
            query = QueryOut(image_id=None, upload_bytes=len(data))
        else:
            try:
                found, stage_ms = service.search_by_id(image_id, k)
            except UnknownImage as error:
                raise _invalid("image_id", str(error), image_id) from error
            query = QueryOut(image_id=image_id, upload_bytes=None)
        return ImageSearchResponse(
            query=query,
            images=service.describe(found),
            models={"encoder": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(found.counts, stage_ms),
        )

    @routes.get(
        "/images/{image_id}.png",
        summary="A catalogue image as PNG (public images only)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such public image"}},
    )
    def image_png(request: Request, image_id: Annotated[int, Path(ge=0, le=MAX_ID)]) -> Response:
        from systems.imagesearch.serving import ImageSearchService, UnknownImage

        service: ImageSearchService = get_service(request, "imagesearch")
        try:
            png = service.thumbnail(image_id)
        except UnknownImage as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @routes.get("/samples", summary="Random public image ids, to start a search from")
    def samples(request: Request, n: Annotated[int, Query(ge=1, le=100, description="How many ids")] = 12) -> list[int]:
        from systems.imagesearch.serving import ImageSearchService

        service: ImageSearchService = get_service(request, "imagesearch")
        public = np.flatnonzero(~service.private)
        return sorted(np.random.default_rng().choice(public, size=min(n, len(public)), replace=False).tolist())

    @routes.get("/", response_class=HTMLResponse, summary="The web page: search by picking or uploading an image")
    def page() -> HTMLResponse:
        return HTMLResponse(files("systems.imagesearch").joinpath("page.html").read_text())

    return routes
