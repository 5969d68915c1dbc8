"""Small lookup tables for the Google Cloud collector (see NOTICE.txt for their sources)."""
