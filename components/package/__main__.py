"""``python -m components.package <engine address>``: serve the package's provider (what the plugin entry runs)."""

from components.package import serve

serve()
