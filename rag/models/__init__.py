"""The models every stage runs over: embeddings, chat clients, the local weights and their server."""
