"""What the object-detection writers (COCO, YOLO, Pascal VOC) share: the preparation of an export
(the shape questions, the image field, the media store, the categories) and the walk over the rows
that gives each task with a final shape answer, its uploaded image and its shapes.

One place for that head, so the three formats cannot drift apart on which tasks they write, how
an image is found or refused, or how the categories are numbered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from truthset.questions import QuestionConfig
from truthset.services.formats._common import blocks, require_questions
from truthset.services.formats._shapes import (
    SHAPE_TYPES,
    Category,
    ShapeObject,
    categories,
    has_answer,
    image_field,
    objects,
)
from truthset.services.formats.images import ImageFile, MediaFiles, image_references, require_image, require_media


@dataclass(frozen=True)
class Detection:
    """An export's shape questions, image field, media store and categories (see :meth:`prepare`)."""

    writer: str
    questions: list[QuestionConfig]
    field: str
    media: MediaFiles
    categories: dict[tuple[str, str], Category]

    @classmethod
    def prepare(
        cls,
        writer: str,
        project: dict[str, Any],
        media: MediaFiles | None,
        questions: list[QuestionConfig] | None = None,
    ) -> Detection:
        """Check the project for ``writer`` (its shape questions, or ``questions`` a writer chose
        itself, and one image field) and the media store; each refusal names the writer."""
        questions = questions if questions is not None else require_questions(project, writer, *SHAPE_TYPES)
        field = image_field(writer, questions)
        return cls(writer, questions, field, require_media(writer, media), categories(questions))

    def images(self, rows: Iterator[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], ImageFile, list[ShapeObject]]]:
        """Each row with a final shape answer, its image and its shapes, in the rows' order.

        The media store is read a block of rows at a time (one query per block); a task whose image
        is not an uploaded one of the organization is refused, naming it (:func:`require_image`).
        """
        for block in blocks(rows):
            self.media.load(image_references(block, [self.field]))
            for row in block:
                if not has_answer(row, self.questions):
                    continue
                image = require_image(self.writer, self.media, row, self.field)
                yield row, image, list(objects(row, self.questions, self.categories, image))
