"""Image generation and editing: safe inputs, the local store, and the one ImageService."""

from .inputs import ImageInput, load_image_input
from .service import ImageResult, ImageService
from .store import ImageStore, StoredImage

__all__ = ["ImageInput", "ImageResult", "ImageService", "ImageStore", "StoredImage",
           "load_image_input"]
