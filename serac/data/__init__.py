"""Edit data: the canonical record, loaders for real formats, preparation, validation."""
