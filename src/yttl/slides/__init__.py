"""Slides: frames, slide changes and OCR, a stage beside transcription (DESIGN §1).

``SlideStage`` finds a video's slides in a thread while its transcript is made; each
section's prompt then carries the text of the slides shown in it."""

from yttl.slides.detect import DetectOptions
from yttl.slides.ocr import check_ocr
from yttl.slides.stage import SlideOptions, SlideStage, find_slides, shown_in

__all__ = ["DetectOptions", "SlideOptions", "SlideStage", "check_ocr", "find_slides", "shown_in"]
