"""The Streamlit review console."""
