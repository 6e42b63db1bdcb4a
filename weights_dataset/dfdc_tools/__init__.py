"""Development tools over the other packages: the starter-model builder (development only, never packed)."""
