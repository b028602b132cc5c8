"""ComfyUI: workflow graphs from templates, their validation against object_info, editor import."""
