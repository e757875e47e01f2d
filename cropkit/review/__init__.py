"""The crop reviewer: a session without widgets, and the ipycanvas widget."""
