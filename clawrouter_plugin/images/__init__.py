"""Image generation and editing: safe inputs, the local store, and the one ImageService."""

from .inputs import ImageInput, load_image_input
from .store import ImageStore, StoredImage

__all__ = ["ImageInput", "ImageStore", "StoredImage", "load_image_input"]
