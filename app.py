"""Streamlit chat UI (placeholder until the chat lands): UI only, calls into `rag`."""

import streamlit as st

st.set_page_config(page_title="Article chat", page_icon="📰")
st.title("Ask the article")
st.info("The chat is being built. Run `python -m rag search \"question\"` meanwhile.")
