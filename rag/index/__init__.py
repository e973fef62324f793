"""Stage 1, indexing: read sources, chunk them with exact offsets, embed, and store a build in Chroma.

`store` is the only module of the package that talks to Chroma.
"""
