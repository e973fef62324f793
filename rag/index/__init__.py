"""Building the index from documents: readers that turn files and web pages into plain text with offsets."""
