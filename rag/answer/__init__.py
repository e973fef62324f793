"""Stage 3, answering: condense a follow-up, gate, generate, check each sentence against its cited passage."""
