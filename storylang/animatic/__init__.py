"""The built-in animatic renderer: storyboard frames moved by the script's camera."""
