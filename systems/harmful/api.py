"""HTTP interface of harmful content detection: POST /harmful/moderate."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, model_validator

from common.images.files import ImageRejected
from common.serving.app import get_service
from common.serving.schemas import ERROR_RESPONSES, MAX_ID, STRICT_INTEGER, ModelOut, RequestModel, StageOut
from systems.harmful.world import CATEGORIES, LANGUAGES

MAX_TEXT = 2_000  # characters: a post, not a document
MAX_IMAGE_BASE64 = 7_000_000  # characters: 5 MB of image, base64-encoded
Language = Literal[tuple(LANGUAGES)]  # type: ignore[valid-type]


class Post(RequestModel):
    """A post to moderate as it is posted: its text, its image (optional) and who wrote it."""

    text: str = Field(
        max_length=MAX_TEXT,
        description=f"The post's text, up to {MAX_TEXT} characters; empty for a post that is only an image",
    )
    language: Language = Field(description=f"The text's language, one of {', '.join(LANGUAGES)}")
    image: str | None = Field(
        None,
        max_length=MAX_IMAGE_BASE64,
        min_length=4,
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        description="The post's image, base64-encoded (PNG, JPEG, GIF, BMP or WebP, at most 5 MB), or null",
    )
    author_id: int = Field(ge=0, le=MAX_ID, strict=True, description=f"The author's id ({STRICT_INTEGER})")

    @model_validator(mode="after")
    def has_content(self) -> Post:
        if not self.text.strip() and self.image is None:
            raise ValueError("the post has neither text nor an image: nothing to moderate")
        return self


class ModerationResponse(BaseModel):
    probabilities: dict[str, float] = Field(description=f"P(category) for each of {', '.join(CATEGORIES)}")
    action: Literal["allow", "demote", "remove"] = Field(
        description="remove: a category at or above its removal threshold (high confidence); demote: at or"
        " above its demotion threshold; allow: neither"
    )
    reason: str | None = Field(description="The category shown to the author as the reason, null when allowed")
    known_author: bool = Field(description="False for an author the feature store does not know (a new account)")
    models: dict[str, ModelOut]
    stages: dict[str, StageOut]


def _image_bytes(image: str | None) -> bytes | None:
    if image is None:
        return None
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _invalid("image", f"the image is not valid base64: {error}") from error


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", field], "msg": message}])


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post("/moderate", response_model=ModerationResponse, summary="Moderate a post", responses=ERROR_RESPONSES)
    async def moderate(post: Post, request: Request) -> ModerationResponse:
        """author features (Feast) + image (CNN) + text -> P(category) -> remove / demote / allow."""
        from systems.harmful.serving import ModerationService

        image = _image_bytes(post.image)
        service: ModerationService = get_service(request, "harmful")
        try:
            decided = service.moderate(post.text, image, post.author_id)
        except ImageRejected as error:
            raise _invalid("image", str(error)) from error
        return ModerationResponse(
            probabilities=decided["probabilities"],
            action=decided["action"],
            reason=decided["reason"],
            known_author=decided["known_author"],
            models={"classifier": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages={name: StageOut(milliseconds=ms) for name, ms in decided["stage_ms"].items()},
        )

    return routes
